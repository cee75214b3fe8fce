<?php

declare(strict_types=1);

namespace Drover\Tests\Http;

use Drover\Http\Request;
use PHPUnit\Framework\TestCase;

final class RequestTest extends TestCase
{
    private static function frame(array $over = []): array
    {
        return $over + [
            'method' => 'POST',
            'target' => '/search/items?q=drover&tags[]=a&tags[]=b',
            'proto' => 'HTTP/1.1',
            'headers' => ['Host', 'example.com:8082', 'Content-Type', 'application/x-www-form-urlencoded; charset=UTF-8',
                'Cookie', 'sid=a%20b', 'Accept', 'text/html', 'accept', 'application/json', 'Cookie', 'theme=dark'],
            'content_length' => 11,
            'remote' => '203.0.113.7:51234',
            'listener' => 1,
        ];
    }

    public function testTheRequestLineAndQuery(): void
    {
        $r = Request::fromFrame(self::frame(), 'name=x&n=1');
        self::assertSame('POST', $r->method);
        self::assertSame('/search/items', $r->path());
        self::assertSame('q=drover&tags[]=a&tags[]=b', $r->queryString());
        self::assertSame(['q' => 'drover', 'tags' => ['a', 'b']], $r->query());
        self::assertSame('drover', $r->query('q'));
        self::assertSame('none', $r->query('missing', 'none'));
        self::assertSame('http://example.com:8082/search/items?q=drover&tags[]=a&tags[]=b', $r->uri());
        self::assertSame(['203.0.113.7', 51234, 1], [$r->remoteAddr, $r->remotePort, $r->listener]);
    }

    public function testHeadersAreCaseInsensitiveAndKeepTheirOrder(): void
    {
        $r = Request::fromFrame(self::frame(), '');
        self::assertSame('text/html, application/json', $r->header('ACCEPT'));
        self::assertSame(['text/html', 'application/json'], $r->headers()['accept']);
        self::assertSame('sid=a%20b; theme=dark', $r->header('cookie'));
        self::assertNull($r->header('x-missing'));
        self::assertSame('application/x-www-form-urlencoded', $r->contentType());
    }

    public function testCookiesFormsAndJSON(): void
    {
        $r = Request::fromFrame(self::frame(), 'name=x&n[]=1&n[]=2');
        self::assertSame(['sid' => 'a b', 'theme' => 'dark'], $r->cookies());
        self::assertSame(['name' => 'x', 'n' => ['1', '2']], $r->parsedBody());
        self::assertSame('x', $r->post('name'));
        $j = Request::fromFrame(self::frame(['headers' => ['Content-Type', 'application/vnd.api+json']]), '{"a":[1,{"b":null}]}');
        self::assertSame(['a' => [1, ['b' => null]]], $j->json());
        self::assertNull($j->post('a'), 'a JSON body has no form fields');
        $bad = Request::fromFrame(self::frame(['headers' => ['Content-Type', 'application/json']]), '{"a":');
        self::assertNull($bad->json());
    }

    public function testServerParamsAsPHPFPMHasThem(): void
    {
        $s = Request::fromFrame(self::frame(['proto' => 'HTTP/1.0']), 'a=1')->serverParams();
        self::assertSame('POST', $s['REQUEST_METHOD']);
        self::assertSame('/search/items?q=drover&tags[]=a&tags[]=b', $s['REQUEST_URI']);
        self::assertSame('q=drover&tags[]=a&tags[]=b', $s['QUERY_STRING']);
        self::assertSame('HTTP/1.0', $s['SERVER_PROTOCOL']);
        self::assertSame('application/x-www-form-urlencoded; charset=UTF-8', $s['CONTENT_TYPE']);
        self::assertArrayNotHasKey('HTTP_CONTENT_TYPE', $s);
        self::assertSame('example.com:8082', $s['HTTP_HOST']);
        self::assertSame('example.com', $s['SERVER_NAME']);
        self::assertSame('sid=a%20b; theme=dark', $s['HTTP_COOKIE']);
        self::assertSame('203.0.113.7', $s['REMOTE_ADDR']);
    }

    public function testHeadersWithUnderscoresAreLeftOut(): void
    {
        $r = Request::fromFrame(self::frame(['headers' => ['X-Forwarded-For', '10.0.0.1', 'X_Forwarded_For', '6.6.6.6', 'X_Token', 'forged']]), '');
        self::assertSame('10.0.0.1', $r->serverParams()['HTTP_X_FORWARDED_FOR'], 'not joined with X_Forwarded_For');
        self::assertArrayNotHasKey('HTTP_X_TOKEN', $r->serverParams());
        self::assertNull($r->header('x_token'));
        self::assertSame(['X-Forwarded-For', '10.0.0.1'], $r->headerList(), 'as the CGI layout has them');
    }

    public function testOddTargets(): void
    {
        self::assertSame('/', Request::fromFrame(self::frame(['target' => 'http://h.example']), '')->path());
        self::assertSame('/p', Request::fromFrame(self::frame(['target' => 'http://h.example/p?x=1']), '')->path());
        self::assertSame('*', Request::fromFrame(self::frame(['method' => 'OPTIONS', 'target' => '*']), '')->path());
        $v6 = Request::fromFrame(self::frame(['remote' => '[2001:db8::1]:443']), '');
        self::assertSame(['2001:db8::1', 443], [$v6->remoteAddr, $v6->remotePort]);
    }
}
