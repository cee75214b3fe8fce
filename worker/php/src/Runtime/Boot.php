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
                fwrite(STDERR, "the worker script ended without serving: call Drover\\Http\\Worker::serve() (or Stream, Task, Psr7) at its end\n");
            }
            exit(78);
        });
    }
}
