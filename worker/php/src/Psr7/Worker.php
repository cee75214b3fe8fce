<?php

declare(strict_types=1);

namespace Drover\Psr7;

use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Http\UploadedFile;
use Drover\Http\Worker as HttpWorker;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;

/**
 * Runs a PSR-7 application unchanged in a resident drover worker:
 *
 *     $app = new \Slim\App();                 // Slim 3 (Debian's php-slim)
 *     $app->get('/hello/{name}', ...);
 *     Drover\Psr7\Worker::serve($app);        // instead of $app->run()
 *
 * $app may be:
 *  - a Slim 3 application (\Slim\App): each request runs through the app's
 *    own run() path (its middleware, error handlers, output buffering and
 *    finalisation), with a Slim request built from the drover request, so
 *    the app answers as it does under php-fpm;
 *  - a PSR-15 request handler (an object with handle(ServerRequestInterface):
 *    ResponseInterface, such as a Slim 4 app or a middleware pipeline);
 *  - a callable taking a ServerRequestInterface and returning a
 *    ResponseInterface.
 *
 * For the last two, requests are built with a PSR-17 factory: $factory, or
 * Nyholm's (Debian's php-nyholm-psr7, loaded from /usr/share/php when it is
 * not autoloaded yet). A response body is sent as it is read from its
 * stream: a large or endless one goes out in pieces.
 *
 * Outside drover (php-fpm) the same script serves PHP's current request, so
 * one front controller runs in both places.
 */
final class Worker
{
    public static function serve(object|callable $app, ?object $factory = null, bool $globals = true): void
    {
        if (class_exists(\Slim\App::class, false) && $app instanceof \Slim\App) {
            if (PHP_SAPI !== 'cli' && PHP_SAPI !== 'phpdbg') {
                $app->run();
                return;
            }
            HttpWorker::serve(self::slim3($app), $globals);
            return;
        }
        $handle = match (true) {
            method_exists($app, 'handle') => static fn (ServerRequestInterface $r): ResponseInterface => $app->handle($r),
            is_callable($app) => \Closure::fromCallable($app),
            default => throw new \InvalidArgumentException(sprintf(
                '%s is not a PSR-7 application: pass a Slim\App, an object with handle(ServerRequestInterface), or a callable', get_debug_type($app))),
        };
        $factory ??= self::defaultFactory();
        HttpWorker::serve(static fn (Request $r): Response => self::toResponse($handle(self::toServerRequest($r, $factory))), $globals);
    }

    /** Nyholm's PSR-17 factory, loading Debian's php-nyholm-psr7 when no autoloader knows it. */
    private static function defaultFactory(): object
    {
        $class = 'Nyholm\Psr7\Factory\Psr17Factory';
        if (!class_exists($class) && is_file('/usr/share/php/Nyholm/Psr7/autoload.php')) {
            require_once '/usr/share/php/Nyholm/Psr7/autoload.php';
        }
        if (!class_exists($class)) {
            throw new \RuntimeException('no PSR-17 factory: install php-nyholm-psr7 (Debian) or nyholm/psr7 (composer), or pass one to Drover\Psr7\Worker::serve($app, $factory)');
        }
        return new $class();
    }

    /**
     * Builds a PSR-7 server request with a PSR-17 factory (an object with
     * the ServerRequest, Stream and UploadedFile factory methods).
     */
    public static function toServerRequest(Request $r, object $factory): ServerRequestInterface
    {
        $req = $factory->createServerRequest($r->method, $r->uri(), $r->serverParams())
            ->withProtocolVersion(substr($r->protocol, 5) ?: '1.1');
        foreach ($r->headers() as $name => $values) {
            $req = $req->withAddedHeader($name, $values);
        }
        $req = $req->withCookieParams($r->cookies())->withQueryParams($r->query());
        if ($r->body !== '') {
            $req = $req->withBody($factory->createStream($r->body));
            $parsed = $r->parsedBody();
            if (is_array($parsed) || is_object($parsed)) {
                $req = $req->withParsedBody($parsed);
            }
            $files = self::mapFiles($r->files(), static fn (UploadedFile $f) => $factory->createUploadedFile(
                $f->getError() === UPLOAD_ERR_OK ? $factory->createStreamFromFile($f->getFile(), 'r') : $factory->createStream(''),
                $f->getSize(), $f->getError(), $f->getClientFilename(), $f->getClientMediaType()));
            if ($files) {
                $req = $req->withUploadedFiles($files);
            }
        }
        return $req;
    }

    /** Turns a PSR-7 response into a drover response; a large or unsized body is streamed. */
    public static function toResponse(ResponseInterface $res): Response
    {
        $out = new Response($res->getStatusCode());
        foreach ($res->getHeaders() as $name => $values) {
            $out->setHeader((string) $name, $values);
        }
        $body = $res->getBody();
        $size = $body->getSize();
        if ($size !== null && $size <= 1 << 20) {
            if ($body->isSeekable()) {
                $body->rewind();
            }
            $out->body = $body->getContents();
            return $out;
        }
        $out->body = (static function () use ($body) {
            if ($body->isSeekable()) {
                $body->rewind();
            }
            while (!$body->eof()) {
                $piece = $body->read(65536);
                if ($piece === '') {
                    break;
                }
                yield $piece;
            }
            $body->close();
        })();
        return $out;
    }

    private static function mapFiles(array $tree, \Closure $fn): array
    {
        $out = [];
        foreach ($tree as $k => $v) {
            $out[$k] = $v instanceof UploadedFile ? $fn($v) : self::mapFiles($v, $fn);
        }
        return $out;
    }

    /**
     * A handler that runs each request through a Slim 3 app's own run(),
     * with the app's container serving a Slim request and environment made
     * from the drover request.
     */
    private static function slim3(\Slim\App $app): \Closure
    {
        $container = $app->getContainer();
        return static function (Request $r) use ($app, $container): Response {
            $server = $r->serverParams() + ['SCRIPT_NAME' => $_SERVER['SCRIPT_NAME'] ?? '', 'SERVER_PORT' => self::port($r)];
            foreach (['environment', 'request', 'response'] as $service) {
                unset($container[$service]);
            }
            $container['environment'] = static fn () => new \Slim\Http\Environment($server);
            $container['request'] = static fn ($c) => self::slimRequest($r, $c->get('environment'));
            $container['response'] = static function ($c) {
                $headers = new \Slim\Http\Headers(['Content-Type' => 'text/html; charset=UTF-8']);
                return (new \Slim\Http\Response(200, $headers))->withProtocolVersion($c->get('settings')['httpVersion']);
            };
            return self::toResponse($app->run(true));
        };
    }

    private static function port(Request $r): int
    {
        $host = $r->host();
        if (preg_match('/:(\d+)$/', $host, $m)) {
            return (int) $m[1];
        }
        return $r->scheme === 'https' ? 443 : 80;
    }

    /** Slim's Request::createFromEnvironment, with the body and uploads drover received. */
    private static function slimRequest(Request $r, \Slim\Http\Environment $env): \Slim\Http\Request
    {
        $headers = \Slim\Http\Headers::createFromEnvironment($env);
        $stream = fopen('php://temp', 'w+');
        fwrite($stream, $r->body);
        rewind($stream);
        $files = self::mapFiles($r->body === '' ? [] : $r->files(), static fn (UploadedFile $f) => new \Slim\Http\UploadedFile(
            $f->getFile(), $f->getClientFilename(), $f->getClientMediaType(), $f->getSize(), $f->getError(), false));
        $req = new \Slim\Http\Request($r->method, \Slim\Http\Uri::createFromEnvironment($env), $headers,
            \Slim\Http\Cookies::parseHeader($headers->get('Cookie', [])), $env->all(), new \Slim\Http\Body($stream), $files);
        $type = $req->getMediaType();
        if ($r->method === 'POST' && ($type === 'application/x-www-form-urlencoded' || $type === 'multipart/form-data')) {
            $req = $req->withParsedBody((array) $r->parsedBody());
        }
        return $req;
    }
}
