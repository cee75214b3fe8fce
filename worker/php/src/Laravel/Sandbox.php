<?php

declare(strict_types=1);

namespace Drover\Laravel;

use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Http\Worker as HttpWorker;
use Drover\Runtime\Log;
use Drover\Symfony\Bridge;
use Illuminate\Contracts\Http\Kernel;
use Illuminate\Foundation\Application;
use Illuminate\Http\Request as LaravelRequest;
use Illuminate\Http\UploadedFile as LaravelUploadedFile;
use Illuminate\Routing\Route;
use Illuminate\Support\Facades\Facade;
use Symfony\Component\HttpFoundation\FileBag;
use Symfony\Component\HttpFoundation\Response as SymfonyResponse;

/**
 * Serves requests with a Laravel application booted once, giving each
 * request the application as it was after boot, as Laravel Octane does.
 *
 * Before each request: the config repository is a clone of the booted one
 * (config([...]) changes last for the request only), and Laravel's error
 * handler is in place while the kernel handles it (a PHP warning becomes
 * an ErrorException and a 500, as under php-fpm).
 *
 * After each response has left (Worker::afterResponse): the kernel's
 * terminate() (terminable middleware, $app->terminating() callbacks), the
 * matched route's controller and gathered middleware forgotten (the next
 * request builds its own controller, as under php-fpm), then reset():
 *  - a transaction a request left open on any database connection is
 *    rolled back (and logged); query logs and the "records modified" flag
 *    are cleared;
 *  - the auth guards are forgotten (the logged-in user with them), the
 *    session drivers (the next request's session is read from its own
 *    cookie only), the cookies queued with Cookie::queue(), the log
 *    channels' shared context, the translator's locale (back to
 *    app.locale);
 *  - the container is put back as it was after boot: every instance a
 *    request resolved or registered (singletons, scoped instances,
 *    instance()), binding it added and callback it registered is dropped,
 *    then the abstracts listed in config('drover.flush') are forgotten
 *    too (singletons resolved at boot that hold per-request data); the
 *    facades' resolved instances are cleared.
 *
 * Not reset: static properties, objects resolved at boot and changed
 * since (unless listed in drover.flush), View::share() data, event
 * listeners added during a request, URL::forceRootUrl()/forceScheme(),
 * ini_set(), setlocale(), date_default_timezone_set().
 */
final class Sandbox
{
    private readonly Kernel $kernel;
    /** @var array<string, mixed> the application's properties after boot */
    private readonly array $snapshot;
    /** the config repository as booted; each request gets a clone */
    private readonly object $config;
    /** Laravel's error handler (HandleExceptions), or null */
    private readonly mixed $errorHandler;
    /** @var list<string> config('drover.flush') */
    private readonly array $flush;
    /** @var \Closure(\Closure): void */
    private readonly \Closure $afterResponse;

    /**
     * @param Application $app a booted application (Worker::boot)
     * @param ?\Closure(\Closure): void $afterResponse what runs a callback once the response has left:
     *                                                Drover\Http\Worker::afterResponse (tests pass their own)
     */
    public function __construct(private readonly Application $app, ?\Closure $afterResponse = null)
    {
        $this->kernel = $app->make(Kernel::class);
        $this->errorHandler = set_error_handler(static fn (): bool => false);
        restore_error_handler();
        $this->config = $app->make('config');
        $this->flush = array_values(array_filter((array) $this->config->get('drover.flush', []), 'is_string'));
        $this->snapshot = (fn (): array => get_object_vars($this))->call($app);
        $this->afterResponse = $afterResponse ?? HttpWorker::afterResponse(...);
    }

    public function application(): Application
    {
        return $this->app;
    }

    /** Handles one request; finish() runs once its response has left. */
    public function handle(Request $r): Response
    {
        $this->app->instance('config', clone $this->config);
        $request = self::toRequest($r);
        $response = null;
        ($this->afterResponse)(function () use ($request, &$response): void {
            $this->finish($request, $response);
        });
        if ($this->errorHandler !== null) {
            set_error_handler($this->errorHandler);
        }
        try {
            $response = $this->kernel->handle($request);
        } finally {
            if ($this->errorHandler !== null) {
                restore_error_handler();
            }
        }
        return Bridge::toResponse($response);
    }

    /**
     * The Laravel Request of $r, as Request::capture() makes it under
     * php-fpm (Request::createFromBase() of createFromGlobals()), built
     * once rather than as a Symfony Request and then a copy of it; uploads
     * are Laravel's UploadedFile, in test mode.
     */
    public static function toRequest(Request $r): LaravelRequest
    {
        $request = Bridge::toRequest($r, $r->serverParams() + $_SERVER, LaravelUploadedFile::class, LaravelRequest::class);
        \assert($request instanceof LaravelRequest);
        (function (): void {
            // What createFromBase() does on top of the constructor: file
            // inputs left empty dropped, and the input source (the JSON
            // body, the query for GET and HEAD) as the request bag.
            if ($this->files->count() > 0) {
                $this->files = new FileBag($this->filterFiles($this->files->all()) ?? []);
            }
            $this->request = $this->getInputSource();
        })->call($request);
        return $request;
    }

    /** Terminates the request (when the kernel answered) and resets the application, whatever terminate() throws. */
    public function finish(LaravelRequest $request, ?SymfonyResponse $response): void
    {
        try {
            if ($response !== null) {
                $this->kernel->terminate($request, $response);
            }
        } finally {
            // The route keeps the controller it built and the middleware it
            // gathered: the next request it matches builds its own, as
            // under php-fpm (and Octane).
            $route = $request->route();
            if ($route instanceof Route && method_exists($route, 'flushController')) {
                $route->flushController();
            }
            $this->reset();
        }
    }

    /** Puts the application back as it was after boot (see the class comment). */
    public function reset(): void
    {
        $app = $this->app;
        if ($app->resolved('db')) {
            foreach ($app->make('db')->getConnections() as $name => $connection) {
                $this->closeTransactions((string) $name, $connection);
            }
        }
        if ($app->resolved('auth')) {
            $app->make('auth')->forgetGuards();
        }
        if ($app->resolved('session')) {
            $app->make('session')->forgetDrivers();
        }
        if ($app->resolved('cookie')) {
            $app->make('cookie')->flushQueuedCookies();
        }
        if ($app->resolved('log')) {
            foreach ($app->make('log')->getChannels() as $channel) {
                if (method_exists($channel, 'withoutContext')) {
                    $channel->withoutContext();
                }
            }
        }
        if ($app->resolved('translator')) {
            $app->make('translator')->setLocale((string) $this->config->get('app.locale', 'en'));
        }
        (function (array $snapshot): void {
            foreach ($snapshot as $name => $value) {
                $this->{$name} = $value;
            }
        })->call($app, $this->snapshot);
        foreach ($this->flush as $abstract) {
            $app->forgetInstance($abstract);
        }
        Facade::clearResolvedInstances();
    }

    /** Rolls back what a request left open on $connection and clears its per-request records. */
    private function closeTransactions(string $name, object $connection): void
    {
        $level = $connection->transactionLevel();
        if ($level > 0) {
            try {
                $connection->rollBack(0);
                Log::line("the request left $level transaction(s) open on database connection \"$name\": rolled back (commit or roll back in the request)");
            } catch (\Throwable $e) {
                // A connection that cannot roll back is not trusted with the next request.
                $this->app->make('db')->purge($name);
                Log::line(sprintf('the request left %d transaction(s) open on database connection "%s" and rolling back failed (%s): the connection is closed',
                    $level, $name, Log::describe($e)));
            }
        }
        if (method_exists($connection, 'flushQueryLog')) {
            $connection->flushQueryLog();
        }
        if (method_exists($connection, 'forgetRecordModificationState')) {
            $connection->forgetRecordModificationState();
        }
    }
}
