<?php

declare(strict_types=1);

namespace Drover\Symfony;

use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Http\Worker;
use Drover\Runtime\Boot;
use Drover\Runtime\Log;
use Symfony\Component\HttpFoundation\Request as SymfonyRequest;
use Symfony\Component\HttpFoundation\Response as SymfonyResponse;
use Symfony\Component\HttpKernel\HttpKernel;
use Symfony\Component\HttpKernel\HttpKernelInterface;
use Symfony\Component\HttpKernel\Kernel;
use Symfony\Component\HttpKernel\KernelEvents;
use Symfony\Component\HttpKernel\KernelInterface;
use Symfony\Component\HttpKernel\TerminableInterface;
use Symfony\Component\Runtime\RunnerInterface;

/**
 * Serves an HttpKernel in a resident drover worker: the kernel boots once,
 * before the first request, and then handles every request the worker
 * gets. For each request:
 *
 *  1. the drover request becomes an HttpFoundation Request (Bridge), and
 *     PHP's globals ($_SERVER, $_GET, $_POST, $_COOKIE, $_FILES) are set as
 *     php-fpm sets them, with SCRIPT_NAME and PHP_SELF "/index.php" and
 *     SCRIPT_FILENAME and DOCUMENT_ROOT those of the front controller, as
 *     nginx's Symfony configuration passes them;
 *  2. the kernel handles it; its Response goes to the client (a streamed
 *     or binary-file response in pieces);
 *  3. once the response has left: kernel.terminate, then the container's
 *     services_resetter resets every service tagged kernel.reset (services
 *     implementing ResetInterface: the session listener, the security
 *     token storage, Monolog's buffers, Doctrine's entity managers, the
 *     app's own), so that the next request starts clean.
 *
 * Drover\Symfony\Runtime returns it for an HttpKernel under drover.
 */
final class Runner implements RunnerInterface
{
    /** @var \Closure(\Closure): void where terminate() goes to run after the response */
    private readonly \Closure $afterResponse;

    /**
     * @param ?\Closure(\Closure): void $afterResponse what runs a callback once the response has left:
     *                                                Drover\Http\Worker::afterResponse (tests pass their own)
     */
    public function __construct(private readonly HttpKernelInterface $kernel, ?\Closure $afterResponse = null)
    {
        $this->afterResponse = $afterResponse ?? Worker::afterResponse(...);
    }

    /** Whether this process is a drover worker (PHP's CLI, started by drover). */
    public static function underDrover(): bool
    {
        return (PHP_SAPI === 'cli' || PHP_SAPI === 'phpdbg') && (string) getenv('DROVER_ROLE') !== '';
    }

    /** Boots the kernel and serves requests until drover stops the worker; never returns under drover. */
    public function run(): int
    {
        if ($this->kernel instanceof KernelInterface) {
            // Once per worker: a failure here is a failed start (exit 78,
            // drover backs off) rather than a 500 on every request.
            try {
                $this->kernel->boot();
            } catch (\Throwable $e) {
                self::handOverBootLogs();
                Log::line(sprintf('the worker failed to start: the Symfony kernel (%s) did not boot: %s', $this->kernel::class, Log::describe($e)));
                Boot::exit(78);
            }
            self::handOverBootLogs();
            self::unhookStreamedResponseListener($this->kernel);
        }
        self::frontController();
        Worker::serve($this->handle(...));
        return 0;
    }

    /**
     * Gives Symfony's ErrorHandler (registered by SymfonyRuntime, with a
     * logger that buffers until the kernel's first request configures it)
     * a logger now: under drover the SDK's error handler replaces it, so
     * nothing would configure it, and its buffer would be printed when the
     * worker exits. Warnings and worse go to drover's log now; the rest
     * (boot-time deprecations) is dropped.
     */
    private static function handOverBootLogs(): void
    {
        $handler = set_error_handler('is_int');
        restore_error_handler();
        $handler = is_array($handler) ? $handler[0] : null;
        if (!class_exists('Psr\Log\AbstractLogger') || !$handler instanceof \Symfony\Component\ErrorHandler\ErrorHandler) {
            return;
        }
        $handler->setDefaultLogger(new class () extends \Psr\Log\AbstractLogger {
            private const KEEP = ['emergency' => 1, 'alert' => 1, 'critical' => 1, 'error' => 1, 'warning' => 1];

            public function log($level, $message, array $context = []): void
            {
                if (isset(self::KEEP[(string) $level])) {
                    Log::line("[$level] $message");
                }
            }
        });
    }

    /**
     * Removes FrameworkBundle's StreamedResponseListener (Symfony 5.4 to
     * 6.0), which sends a StreamedResponse from within kernel.response,
     * where PHP's SAPI would take its output: here the Runner sends it,
     * after the head, as it does every response.
     */
    private static function unhookStreamedResponseListener(KernelInterface $kernel): void
    {
        $class = 'Symfony\Component\HttpKernel\EventListener\StreamedResponseListener';
        $container = $kernel->getContainer();
        if (!class_exists($class) || !$container->has('event_dispatcher')) {
            return;
        }
        $dispatcher = $container->get('event_dispatcher');
        foreach ($dispatcher->getListeners(KernelEvents::RESPONSE) as $listener) {
            if (is_array($listener) && $listener[0] instanceof $class) {
                $dispatcher->removeListener(KernelEvents::RESPONSE, $listener);
            }
        }
    }

    /**
     * The front controller as nginx's Symfony configuration names it
     * (SCRIPT_FILENAME $realpath_root$fastcgi_script_name, SCRIPT_NAME
     * /index.php), for Request::getBaseUrl() and code that reads them.
     */
    private static function frontController(): void
    {
        $file = (string) ($_SERVER['SCRIPT_FILENAME'] ?? '');
        $file = realpath($file) ?: $file;
        if ($file === '') {
            return;
        }
        $_SERVER['SCRIPT_FILENAME'] = $file;
        $_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = '/' . basename($file);
        $_SERVER['DOCUMENT_ROOT'] = dirname($file);
    }

    /**
     * Handles one request; terminate() is queued to run once the response
     * has left (Worker::afterResponse), whether the kernel answered or
     * threw.
     */
    public function handle(Request $r): Response
    {
        // Under Worker::serve, $_SERVER is this request's already (globals
        // on); serverParams() is built once per request.
        $request = Bridge::toRequest($r, $r->serverParams() + $_SERVER);
        $response = null;
        ($this->afterResponse)(function () use ($request, &$response): void {
            $this->terminate($request, $response);
        });
        try {
            $response = $this->kernel->handle($request);
        } catch (\Throwable $e) {
            $response = $this->uncaught($e, $request);
        }
        return Bridge::toResponse($response);
    }

    /**
     * The response to a throwable the kernel let through (HttpKernel 5.4
     * catches exceptions but not PHP's Errors, a TypeError for one):
     * under php-fpm, Symfony's ErrorHandler hands it to
     * HttpKernel::terminateWithException(), which renders it through
     * kernel.exception (the app's error page, the log line) and sends
     * it. This does the same and returns the response instead of sending
     * it. It rethrows (the SDK answers a plain 500) when the kernel is not
     * Symfony's HttpKernel or has no such method.
     */
    private function uncaught(\Throwable $e, SymfonyRequest $request): SymfonyResponse
    {
        $kernel = $this->kernel;
        if ($kernel instanceof KernelInterface && $kernel->getContainer()->has('http_kernel')) {
            $kernel = $kernel->getContainer()->get('http_kernel');
        }
        if (!$kernel instanceof HttpKernel || !method_exists($kernel, 'handleThrowable')) {
            throw $e;
        }
        return (function () use ($e, $request): SymfonyResponse {
            // What terminateWithException() does before it sends.
            if ($pop = $request !== $this->requestStack->getMainRequest()) {
                $this->requestStack->push($request);
            }
            try {
                return $this->handleThrowable($e, $request, HttpKernelInterface::MAIN_REQUEST);
            } finally {
                if ($pop) {
                    $this->requestStack->pop();
                }
            }
        })->call($kernel);
    }

    /**
     * Runs kernel.terminate (when the kernel answered) and resets the
     * container's services, whatever terminate() throws.
     */
    public function terminate(SymfonyRequest $request, ?SymfonyResponse $response): void
    {
        try {
            if ($response !== null && $this->kernel instanceof TerminableInterface) {
                $this->kernel->terminate($request, $response);
            }
        } finally {
            $this->reset();
        }
    }

    /**
     * Resets the services tagged kernel.reset. Symfony's Kernel does it
     * itself at the start of the request after one it handled (boot());
     * calling boot() now does it between requests instead, so that what a
     * request left (the user, buffers, entities) is gone before the next
     * one arrives and its memory is free meanwhile.
     */
    private function reset(): void
    {
        $kernel = $this->kernel;
        if ($kernel instanceof Kernel) {
            $kernel->boot();
            return;
        }
        if ($kernel instanceof KernelInterface && ($container = $kernel->getContainer())->has('services_resetter')) {
            $container->get('services_resetter')->reset();
        }
    }
}
