<?php

namespace App\Service;

use Symfony\Component\EventDispatcher\EventSubscriberInterface;
use Symfony\Component\HttpKernel\Event\RequestEvent;
use Symfony\Component\HttpKernel\KernelEvents;

// Fills CurrentUser from the session of a client that has one.
class UserListener implements EventSubscriberInterface
{
    public function __construct(private CurrentUser $user)
    {
    }

    public static function getSubscribedEvents(): array
    {
        return [KernelEvents::REQUEST => ['onRequest', 0]];
    }

    public function onRequest(RequestEvent $event): void
    {
        $request = $event->getRequest();
        if ($event->isMainRequest() && $request->hasPreviousSession()) {
            $this->user->set($request->getSession()->get('user'));
        }
    }
}
