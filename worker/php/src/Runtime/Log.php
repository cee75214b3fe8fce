<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * The worker's log: one line per event on stderr. drover's manager reads a
 * worker's output and logs each line with the worker's role, id and pid
 * ("worker output"), so a line here only says what happened.
 */
final class Log
{
    /** @var ?\Closure(string): void where lines go instead of stderr (tests) */
    public static ?\Closure $sink = null;

    /** Writes $message as one line (newlines inside it are folded). */
    public static function line(string $message): void
    {
        $message = rtrim($message, "\n");
        if (str_contains($message, "\n")) {
            $message = str_replace(["\r\n", "\n"], ' | ', $message);
        }
        if (self::$sink !== null) {
            (self::$sink)($message);
            return;
        }
        @fwrite(STDERR, $message . "\n");
    }

    /** Describes a throwable for a log line: class, message and file:line. */
    public static function describe(\Throwable $e): string
    {
        $s = sprintf('%s: %s at %s:%d', $e::class, $e->getMessage(), $e->getFile(), $e->getLine());
        if (($prev = $e->getPrevious()) !== null) {
            $s .= sprintf(' (caused by %s: %s at %s:%d)', $prev::class, $prev->getMessage(), $prev->getFile(), $prev->getLine());
        }
        return $s;
    }
}
