<?php

namespace App\Http\Middleware;

use App\Services\CurrentUser;
use Closure;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Auth;

// Puts the logged-in user in the CurrentUser singleton for the request.
class SetCurrentUser
{
    public function __construct(private CurrentUser $current)
    {
    }

    public function handle(Request $request, Closure $next)
    {
        $this->current->name = Auth::user()?->name;
        return $next($request);
    }
}
