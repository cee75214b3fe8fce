<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * Reports a worker that ends before it serves: the protocol's boot failure.
 *
 * @internal boot.php installs it, loaded by autoload.php and by composer's
 * autoloader ("files").
 */
final class Boot
{
    private static bool $guarded = false;
    private static bool $reported = false;

    /** The worker exits on purpose and has said why: nothing to add. */
    public static function exit(int $code): never
    {
        self::$reported = true;
        exit($code);
    }

    /**
     * What to do about a script that ran to its end: for a framework's
     * front controller that ran as under php-fpm, that framework's way.
     */
    private static function hint(): string
    {
        if (class_exists(\Symfony\Component\Runtime\SymfonyRuntime::class, false)) {
            return "Symfony's own runtime served one request and returned: set APP_RUNTIME: 'Drover\\Symfony\\Runtime' "
                . 'under worker.env in drover.yaml (not in .env, which is read after the runtime is chosen); docs/php.md, Symfony';
        }
        if (class_exists(\Illuminate\Foundation\Application::class, false)) {
            return "this is a Laravel app's front controller: point worker.cmd at drover's worker/php/laravel-worker.php "
                . 'with the app\'s directory as its argument; docs/php.md, Laravel';
        }
        return 'call Drover\\Http\\Worker::serve() (or Stream, Task, Psr7) at its end';
    }

    /** Installs the check, once, in a process drover started. */
    public static function guard(): void
    {
        if (self::$guarded || PHP_SAPI !== 'cli' || (string) getenv('DROVER_ROLE') === '') {
            return;
        }
        self::$guarded = true;
        register_shutdown_function(static function (): void {
            if (self::$reported || Loop::running()) {
                return; // said already, or the loop reports its own end
            }
            $e = error_get_last();
            if ($e !== null && ($e['type'] & (E_ERROR | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR | E_PARSE)) !== 0) {
                $msg = strtok($e['message'], "\n");
                $msg = preg_replace('/ in \S+:\d+$/', '', (string) $msg);
                fwrite(STDERR, sprintf("the worker failed to start: %s in %s:%d\n", $msg, $e['file'], $e['line']));
            } else {
                fwrite(STDERR, (headers_sent() ? "\n" : '') . 'the worker script ended without serving: ' . self::hint() . "\n");
            }
            exit(78);
        });
    }
}
