<?php

namespace App\Providers;

use App\Services\CurrentUser;
use App\Services\LastVisitor;
use Illuminate\Support\ServiceProvider;

class AppServiceProvider extends ServiceProvider
{
    public function register()
    {
        $this->app->singleton(CurrentUser::class);
        $this->app->singleton(LastVisitor::class);
    }

    public function boot()
    {
        // Both are resolved at boot (as a provider that configures them
        // would): under a resident worker they then live across requests.
        // CurrentUser is listed in config/drover.php's 'flush', so each
        // request gets a new one; LastVisitor is not, so it keeps what the
        // previous request left (StateController shows both).
        $this->app->make(CurrentUser::class);
        $this->app->make(LastVisitor::class);
    }
}
