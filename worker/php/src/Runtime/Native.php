<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * Whether the SDK uses drover's PHP extension (worker/php/ext, `make
 * php-ext`): loaded, of the API this SDK was written for, and not turned
 * off with DROVER_PHP_NATIVE=0 in the worker's environment. Without it the
 * SDK does the same work in PHP.
 *
 * @internal
 */
final class Native
{
    /** The extension's API this SDK calls (Drover\Native\API, DROVER_API in drover.c). */
    public const API = 1;

    private static ?bool $enabled = null;

    public static function enabled(): bool
    {
        return self::$enabled ??= self::check();
    }

    private static function check(): bool
    {
        if (!extension_loaded('drover') || getenv('DROVER_PHP_NATIVE') === '0') {
            return false;
        }
        $api = \defined('Drover\Native\API') ? (int) \constant('Drover\Native\API') : 0;
        if ($api !== self::API) {
            Log::line(sprintf('drover\'s PHP extension %s has API %d, this SDK wants %d: the worker runs without it; '
                . 'rebuild it from this checkout (make php-ext) and restart', (string) phpversion('drover'), $api, self::API));
            return false;
        }
        return true;
    }
}
