<?php

declare(strict_types=1);

namespace Drover\Laravel;

use Drover\Http\Worker as HttpWorker;
use Drover\Runtime\Boot;
use Drover\Runtime\Log;
use Illuminate\Contracts\Http\Kernel;
use Illuminate\Foundation\Application;
use Illuminate\Foundation\Bootstrap\RegisterProviders;
use Illuminate\Foundation\Bootstrap\SetRequestForConsole;
use Illuminate\Http\Request as LaravelRequest;

/**
 * Runs a Laravel application (8.x) as a resident drover worker. The app
 * needs no code of its own: point worker.cmd at the SDK's entry,
 *
 *     worker:
 *       cmd: [php, vendor/drover/drover/laravel-worker.php]   # in the app's root
 *
 * and each worker boots the application once (bootstrap/app.php, the HTTP
 * kernel's bootstrappers, every service provider, deferred ones too) and
 * serves each request with a fresh sandbox of it (Drover\Laravel\Sandbox:
 * what it resets and what it does not).
 */
final class Worker
{
    /**
     * Services resolved at boot, so that requests do not pay for them and
     * every request finds them as boot left them (as Octane's "warm").
     */
    public const WARM = ['auth', 'blade.compiler', 'cache', 'cache.store', 'config', 'cookie', 'date', 'db', 'db.factory', 'encrypter',
        'files', 'hash', 'log', 'router', 'routes', 'session', 'translator', 'url', 'view',
        \Illuminate\Contracts\Debug\ExceptionHandler::class, \Illuminate\Routing\Contracts\ControllerDispatcher::class];

    /** Boots the application in $basePath (default: the current directory) and serves it. */
    public static function serve(?string $basePath = null): void
    {
        $basePath ??= (string) getcwd();
        try {
            $app = self::boot($basePath);
        } catch (\Throwable $e) {
            // Laravel's exception handler is installed by now: say it here,
            // in one line, and exit as a failed start (drover backs off).
            Log::line(sprintf('the worker failed to start: the Laravel application in %s did not boot: %s', $basePath, Log::describe($e)));
            Boot::exit(78);
        }
        $sandbox = new Sandbox($app);
        HttpWorker::serve($sandbox->handle(...));
    }

    /**
     * Boots the Laravel application in $basePath as the HTTP kernel would
     * on a first request: its bootstrappers (with a console request set
     * before the providers register, for providers that read the request
     * at boot), the deferred providers, the WARM services. PHP's CLI is not
     * taken for a console: runningInConsole() is false, as under php-fpm.
     */
    public static function boot(string $basePath): Application
    {
        if (!is_file("$basePath/bootstrap/app.php")) {
            throw new \RuntimeException("$basePath/bootstrap/app.php not found: start the worker in the app's root directory (worker.dir) or pass the root as its argument");
        }
        if (!defined('LARAVEL_START')) {
            define('LARAVEL_START', microtime(true));
        }
        $_SERVER['APP_RUNNING_IN_CONSOLE'] = $_ENV['APP_RUNNING_IN_CONSOLE'] = 'false';
        if (is_file("$basePath/vendor/autoload.php")) {
            require_once "$basePath/vendor/autoload.php";
        }
        $app = require "$basePath/bootstrap/app.php";
        if (!$app instanceof Application) {
            throw new \UnexpectedValueException("$basePath/bootstrap/app.php returned " . get_debug_type($app) . ': want the Illuminate\Foundation\Application');
        }
        $kernel = $app->make(Kernel::class);
        $bootstrappers = (fn (): array => $this->bootstrappers())->call($kernel);
        $at = array_search(RegisterProviders::class, $bootstrappers, true);
        if ($at !== false) {
            array_splice($bootstrappers, $at, 0, [SetRequestForConsole::class]);
        }
        $app->bootstrapWith($bootstrappers);
        if ((string) $app['config']->get('app.key') === '') {
            // Laravel says so only on the first request that encrypts, in
            // its own log: say it once, at boot, in drover's.
            Log::line("APP_KEY is empty in $basePath (.env, or config/app.php): every request that encrypts (cookies, sessions, "
                . "the web middleware) will answer 500 with Laravel's MissingAppKeyException; run php artisan key:generate "
                . '(then php artisan config:cache again if the config is cached) and drover reload');
        }
        $app->loadDeferredProviders();
        foreach (self::WARM as $service) {
            if ($app->bound($service)) {
                $app->make($service);
            }
        }
        // As Request::capture() does for each request under php-fpm.
        LaravelRequest::enableHttpMethodParameterOverride();
        // The front controller as nginx's configuration names it, for the
        // request's base URL and code that reads $_SERVER.
        $index = realpath("$basePath/public/index.php") ?: "$basePath/public/index.php";
        $_SERVER['SCRIPT_FILENAME'] = $index;
        $_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = '/index.php';
        $_SERVER['DOCUMENT_ROOT'] = dirname($index);
        return $app;
    }
}
