<?php

declare(strict_types=1);

namespace Drover\Tests\Laravel;

use Drover\Http\Request;
use Drover\Laravel\Sandbox;
use Drover\Symfony\Bridge;
use Illuminate\Http\Request as LaravelRequest;
use Illuminate\Http\UploadedFile;
use PHPUnit\Framework\TestCase;

/**
 * Sandbox::toRequest builds Laravel's Request in one go: it must be the
 * request Request::createFromBase() makes of the Symfony one (what it
 * replaced, and what Request::capture() gives under php-fpm).
 */
final class RequestTest extends TestCase
{
    public static function setUpBeforeClass(): void
    {
        if (!is_file('/usr/share/php/Illuminate/autoload.php')) {
            throw new \RuntimeException("the Laravel tests need Debian's Laravel 8: apt-get install php-laravel-framework php-sqlite3 (.ci/run does it)");
        }
        require_once '/usr/share/php/Illuminate/autoload.php';
    }

    /** @param list<string> $headers */
    private static function request(string $method, string $target, array $headers = [], string $body = ''): Request
    {
        return new Request($method, $target, 'HTTP/1.1', array_merge(['Host', 'shop.example:8443', 'Cookie', 'theme=dark; x.y=1'], $headers), $body, '203.0.113.7', 51234);
    }

    /** What a request looks like to a Laravel app, down to the class of each bag. */
    private static function facts(LaravelRequest $l): array
    {
        $map = static function (array $tree) use (&$map): array {
            return array_map(static fn ($f) => \is_array($f) ? $map($f)
                : ($f instanceof UploadedFile ? [$f::class, $f->getClientOriginalName(), $f->getSize(), $f->isValid()] : $f), $tree);
        };
        $files = $map($l->files->all());
        return [
            'method' => $l->method(), 'url' => $l->fullUrl(), 'path' => $l->path(), 'ip' => $l->ip(),
            'query' => [$l->query::class, $l->query->all()],
            'request' => [$l->request::class, $l->request->all()],
            'input' => $l->input(), 'all' => array_keys($l->all()), 'json' => $l->isJson() ? $l->json()->all() : null,
            'cookies' => $l->cookies->all(), 'headers' => $l->headers->all(), 'server' => $l->server->all(),
            'content' => $l->getContent(), 'files' => $files, 'all files' => $map($l->allFiles()),
            'attributes' => $l->attributes->all(), 'ajax' => $l->ajax(), 'wants json' => $l->wantsJson(),
        ];
    }

    /** @return iterable<string, array{Request}> */
    public static function requests(): iterable
    {
        yield 'GET with a query' => [self::request('GET', '/shop?a[]=1&a[]=2&q=%20x&empty=', ['Accept', 'application/json', 'X-Requested-With', 'XMLHttpRequest'])];
        yield 'HEAD' => [self::request('HEAD', '/shop?a=1')];
        yield 'POST form' => [self::request('POST', '/form?a=q', ['Content-Type', 'application/x-www-form-urlencoded'], 'name=al+ice&tags[]=x&a=body')];
        yield 'POST JSON' => [self::request('POST', '/json?a=q', ['Content-Type', 'application/json'], '{"a":1,"b":{"c":[true,null]}}')];
        yield 'PUT JSON' => [self::request('PUT', '/json', ['Content-Type', 'application/json'], '{"a":2}')];
        yield 'PUT form' => [self::request('PUT', '/p', ['Content-Type', 'application/x-www-form-urlencoded'], 'a=1&b=2')];
        yield 'DELETE without a body' => [self::request('DELETE', '/p/7')];
        yield 'POST method override' => [self::request('POST', '/p', ['Content-Type', 'application/x-www-form-urlencoded'], '_method=PATCH&a=1')];
        $boundary = 'XyZ';
        yield 'POST multipart' => [self::request('POST', '/upload', ['Content-Type', "multipart/form-data; boundary=$boundary"],
            "--$boundary\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nQ3\r\n"
            . "--$boundary\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"report.bin\"\r\nContent-Type: application/x-report\r\n\r\n\x00\x01report\r\n"
            . "--$boundary\r\nContent-Disposition: form-data; name=\"docs[]\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
            . "--$boundary\r\nContent-Disposition: form-data; name=\"docs[]\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n"
            . "--$boundary\r\nContent-Disposition: form-data; name=\"none\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n"
            . "--$boundary--\r\n")];
        yield 'POST multipart, every file input left empty' => [self::request('POST', '/upload', ['Content-Type', "multipart/form-data; boundary=$boundary"],
            "--$boundary\r\nContent-Disposition: form-data; name=\"none\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n"
            . "--$boundary--\r\n")];
    }

    /** @dataProvider requests */
    public function testTheRequestIsWhatCreateFromBaseMadeOfIt(Request $r): void
    {
        LaravelRequest::enableHttpMethodParameterOverride();
        try {
            $want = LaravelRequest::createFromBase(Bridge::toRequest($r, $r->serverParams() + $_SERVER, UploadedFile::class));
            $got = Sandbox::toRequest($r);
            self::assertInstanceOf(LaravelRequest::class, $got);
            self::assertEquals(self::facts($want), self::facts($got));
            // The request bag is the input source itself, as createFromBase() leaves it.
            if (\in_array($r->method, ['GET', 'HEAD'], true)) {
                self::assertSame($got->query, $got->request);
            }
        } finally {
            $r->cleanup();
        }
    }
}
