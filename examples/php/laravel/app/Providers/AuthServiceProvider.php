<?php

namespace App\Providers;

use App\Auth\DemoUserProvider;
use Illuminate\Foundation\Support\Providers\AuthServiceProvider as ServiceProvider;
use Illuminate\Support\Facades\Auth;

class AuthServiceProvider extends ServiceProvider
{
    protected $policies = [];

    public function boot()
    {
        $this->registerPolicies();
        Auth::provider('demo', static fn () => new DemoUserProvider());
    }
}
