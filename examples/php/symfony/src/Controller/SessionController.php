<?php

namespace App\Controller;

use App\Service\CurrentUser;
use Symfony\Bundle\FrameworkBundle\Controller\AbstractController;
use Symfony\Component\HttpFoundation\Cookie;
use Symfony\Component\HttpFoundation\JsonResponse;
use Symfony\Component\HttpFoundation\Request;

// Sessions and cookies: log in with a form, see who you are, log out.
class SessionController extends AbstractController
{
    public function __construct(private CurrentUser $user)
    {
    }

    // POST /login (user=alice&theme=dark): the user goes in the session, the theme in a cookie.
    public function login(Request $request): JsonResponse
    {
        $name = (string) $request->request->get('user', '');
        if ($name === '') {
            return $this->json(['error' => 'user is required'], 422);
        }
        $session = $request->getSession();
        $session->migrate(true);
        $session->set('user', $name);
        $session->set('visits', 0);
        $this->user->set($name);
        $response = $this->json(['logged_in' => $name]);
        $response->headers->setCookie(Cookie::create('theme', (string) $request->request->get('theme', 'light'), 0, '/', null, false, false));
        return $response;
    }

    // GET /me: the session's user, the per-request singleton's, the cookies.
    public function me(Request $request): JsonResponse
    {
        $visits = null;
        if ($request->hasPreviousSession() && $request->getSession()->has('user')) {
            $visits = $request->getSession()->get('visits', 0) + 1;
            $request->getSession()->set('visits', $visits);
        }
        return $this->json([
            'session_user' => $request->hasPreviousSession() ? $request->getSession()->get('user') : null,
            'current_user' => $this->user->name(),
            'visits' => $visits,
            'theme' => $request->cookies->get('theme'),
        ]);
    }

    // POST /logout: the session is destroyed and its cookie cleared.
    public function logout(Request $request): JsonResponse
    {
        if ($request->hasPreviousSession()) {
            $request->getSession()->invalidate();
        }
        $response = $this->json(['logged_out' => true]);
        $response->headers->clearCookie('theme', '/', null, false, false);
        return $response;
    }
}
