<?php

declare(strict_types=1);

namespace Drover\Http;

use Drover\Runtime\HttpHandler;
use Drover\Runtime\Loop;

/**
 * Serves HTTP with a PHP callable in a resident drover worker:
 *
 *     require '/path/to/worker/php/autoload.php';
 *     use Drover\Http\{Request, Response, Worker};
 *
 *     $app = bootstrap();                       // once per worker, not per request
 *     Worker::serve(fn (Request $r) => Response::text('Hello, World!'));
 *
 * The handler gets a Request and returns a Response (or a string, an array
 * for JSON, null for 204). An exception it throws answers 500 and is logged
 * with file:line; the worker carries on. A PHP fatal error answers 500 too,
 * then the worker exits and drover starts a new one. What the handler echoes
 * goes to drover's log, never to the client. PHP's request globals ($_GET,
 * $_POST, $_COOKIE, $_FILES, $_SERVER, $_REQUEST) are set for each request
 * (pass globals: false to skip that) and reset after it, with the output
 * buffers, the session and the uploads' temporary files.
 *
 * Outside drover (php-fpm, mod_php, `php -S`) the same script serves the
 * one request PHP is handling, so one entry point runs in both places.
 */
final class Worker
{
    /** @var list<\Closure> afterResponse callbacks of the request PHP's SAPI serves (php-fpm) */
    private static array $after = [];

    /** @param callable(Request): mixed $handler */
    public static function serve(callable $handler, bool $globals = true): void
    {
        $handler = \Closure::fromCallable($handler);
        if (PHP_SAPI !== 'cli' && PHP_SAPI !== 'phpdbg') {
            self::emit(Response::from($handler(Request::fromGlobals())));
            if (self::$after) {
                if (function_exists('fastcgi_finish_request')) {
                    fastcgi_finish_request();
                }
                for ($i = 0; $i < count(self::$after); $i++) {
                    (self::$after[$i])();
                }
                self::$after = [];
            }
            return;
        }
        Loop::run(new HttpHandler($handler, $globals));
    }

    /**
     * Runs $fn once the response of the request being handled has gone to
     * drover, whole: for work the client need not wait for (Symfony's
     * kernel.terminate, sending a mail, flushing metrics), as code after
     * fastcgi_finish_request() under php-fpm. Callbacks run in the order
     * they were added, after the handler returned and before the
     * request's state (globals, session, uploads) is reset. What one
     * throws or prints is logged and the worker carries on; a fatal error
     * in one replaces the worker, its client already answered.
     *
     * The worker counts as free once the response has left, so drover may
     * give it the next request while the callbacks run: keep them short,
     * and move slow work to a task (Drover\Task::async).
     *
     * Under php-fpm it runs after fastcgi_finish_request().
     *
     * @throws \LogicException when called outside a request's handler
     */
    public static function afterResponse(callable $fn): void
    {
        $fn = \Closure::fromCallable($fn);
        if (PHP_SAPI !== 'cli' && PHP_SAPI !== 'phpdbg') {
            self::$after[] = $fn;
            return;
        }
        HttpHandler::afterResponse($fn);
    }

    /**
     * Binds the connection of the request being handled to user id $uid
     * for dispatch_mode 5 (Swoole's bind): from the connection's next
     * request on, its requests go to worker $uid % worker_num. Before it,
     * they go to one worker as in dispatch_mode 2. Each new connection of
     * the user binds again. Outside drover (php-fpm) it does nothing.
     *
     * @throws \LogicException when called outside a request's handler
     */
    public static function bind(int $uid): void
    {
        if (PHP_SAPI !== 'cli' && PHP_SAPI !== 'phpdbg') {
            return;
        }
        HttpHandler::bind($uid);
    }

    /** Sends a response through PHP's SAPI (php-fpm and the like). */
    public static function emit(Response $res): void
    {
        http_response_code($res->status);
        foreach ($res->headers() as $name => $values) {
            foreach ($values as $i => $v) {
                header("$name: $v", $i === 0);
            }
        }
        $body = $res->body;
        if (is_string($body)) {
            echo $body;
            return;
        }
        if ($body instanceof \Closure) {
            $body(static function (string $piece): void {
                echo $piece;
                flush();
            });
            return;
        }
        if (is_resource($body)) {
            while (!feof($body)) {
                echo fread($body, 65536);
                flush();
            }
            fclose($body);
            return;
        }
        foreach ($body as $piece) {
            echo $piece;
            flush();
        }
    }
}
