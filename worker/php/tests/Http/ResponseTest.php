<?php

declare(strict_types=1);

namespace Drover\Tests\Http;

use Drover\Http\Response;
use PHPUnit\Framework\TestCase;

final class ResponseTest extends TestCase
{
    public function testHelpers(): void
    {
        $t = Response::text('hi', 201);
        self::assertSame([201, 'text/plain; charset=utf-8', 'hi'], [$t->status, $t->header('content-type'), $t->body]);
        $j = Response::json(['a' => 'ü/x']);
        self::assertSame('{"a":"ü/x"}', $j->body);
        self::assertSame('application/json', $j->header('Content-Type'));
        $r = Response::redirect('/login');
        self::assertSame([302, '/login'], [$r->status, $r->header('location')]);
    }

    public function testHeadersKeepTheirNameAndOrder(): void
    {
        $r = new Response(200, ['X-A' => '1', 'Vary' => ['Accept', 'Cookie']]);
        $r->addHeader('vary', 'Origin')->setHeader('x-a', '2')->setCookie('sid', 'a b', ['path' => '/', 'httponly' => true]);
        self::assertSame(['x-a', '2', 'Vary', 'Accept', 'Vary', 'Cookie', 'Vary', 'Origin', 'Set-Cookie', 'sid=a%20b; path=/; HttpOnly'], $r->headerList());
        $r->removeHeader('VARY');
        self::assertNull($r->header('vary'));
    }

    public function testFromWhatHandlersReturn(): void
    {
        self::assertSame('text/html; charset=UTF-8', Response::from('<p>x</p>')->header('content-type'));
        self::assertSame('[1,2]', Response::from([1, 2])->body);
        self::assertSame(204, Response::from(null)->status);
        $r = new Response(418);
        self::assertSame($r, Response::from($r));
        $this->expectException(\UnexpectedValueException::class);
        $this->expectExceptionMessage('the handler returned int: return a Drover\Http\Response, a string, an array (JSON) or null');
        Response::from(42);
    }

    public function testJsonThatCannotBeEncodedThrows(): void
    {
        $this->expectException(\JsonException::class);
        Response::json(["\xff"]);
    }
}
