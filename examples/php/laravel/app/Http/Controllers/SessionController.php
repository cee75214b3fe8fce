<?php

namespace App\Http\Controllers;

use App\Services\CurrentUser;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Auth;
use Illuminate\Support\Facades\Cookie;

// Login, sessions and cookies.
class SessionController extends Controller
{
    // POST /login (name=alice&password=alice-secret&theme=dark)
    public function login(Request $request)
    {
        if (!Auth::attempt($request->only('name', 'password'))) {
            return response()->json(['error' => 'wrong name or password'], 422);
        }
        $request->session()->regenerate();
        $request->session()->put('visits', 0);
        Cookie::queue('theme', (string) $request->input('theme', 'light'), 60);
        return response()->json(['logged_in' => Auth::user()->name]);
    }

    // GET /me: the guard's user, the session, the per-request singleton, the cookie.
    public function me(Request $request, CurrentUser $current)
    {
        $visits = null;
        if (Auth::check()) {
            $visits = $request->session()->get('visits', 0) + 1;
            $request->session()->put('visits', $visits);
        }
        return response()->json([
            'user' => Auth::user()?->name,
            'current_user' => $current->name,
            'visits' => $visits,
            'theme' => $request->cookie('theme'),
        ]);
    }

    // POST /logout
    public function logout(Request $request)
    {
        Auth::logout();
        $request->session()->invalidate();
        Cookie::queue(Cookie::forget('theme'));
        return response()->json(['logged_out' => true]);
    }
}
