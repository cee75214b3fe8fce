<?php

namespace Drover\Tests\Laravel\Fixtures;

use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Route;
use Illuminate\Support\ServiceProvider;

final class FixtureProvider extends ServiceProvider
{
    /** @var list<string> what terminating callbacks saw */
    public static array $terminated = [];

    public function register(): void
    {
        $this->app->singleton('listed', static fn () => new \ArrayObject());    // in drover.flush
        $this->app->singleton('unlisted', static fn () => new \ArrayObject());  // not
    }

    public function boot(): void
    {
        $this->app->make('listed');
        $this->app->make('unlisted');
        Route::get('/state', function () {
            $found = [
                'greeting' => config('app.greeting'),
                'bound' => app()->bound('per-request'),
                'listed' => count(app('listed')),
                'unlisted' => count(app('unlisted')),
                'level' => DB::transactionLevel(),
            ];
            config(['app.greeting' => 'Howdy']);
            app()->instance('per-request', new \stdClass());
            app('listed')->append('x');
            app('unlisted')->append('x');
            DB::beginTransaction();
            app()->terminating(static function (): void {
                self::$terminated[] = 'GET /state';
            });
            return response()->json($found);
        });
        // A controller that counts the requests it served: under php-fpm
        // each request builds its own, so the count is always 1.
        Route::get('/controller', CountingController::class);
        Route::get('/warn', static function () {
            $none = [];
            return $none['missing'];
        });
    }
}

final class CountingController
{
    private int $served = 0;

    public function __invoke(): \Illuminate\Http\JsonResponse
    {
        return response()->json(['served' => ++$this->served]);
    }
}
