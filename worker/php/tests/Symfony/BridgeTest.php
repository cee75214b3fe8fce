<?php

declare(strict_types=1);

namespace Drover\Tests\Symfony;

use Drover\Http\Request;
use Drover\Symfony\Bridge;
use PHPUnit\Framework\TestCase;
use Symfony\Component\HttpFoundation\BinaryFileResponse;
use Symfony\Component\HttpFoundation\Cookie;
use Symfony\Component\HttpFoundation\File\UploadedFile;
use Symfony\Component\HttpFoundation\JsonResponse;
use Symfony\Component\HttpFoundation\Request as SymfonyRequest;
use Symfony\Component\HttpFoundation\Response as SymfonyResponse;
use Symfony\Component\HttpFoundation\StreamedResponse;

require_once __DIR__ . '/SymfonyPackages.php';

final class BridgeTest extends TestCase
{
    public static function setUpBeforeClass(): void
    {
        SymfonyPackages::load();
    }

    /** @param list<string> $headers */
    private static function request(string $method, string $target, array $headers = [], string $body = '', string $scheme = 'http'): Request
    {
        return new Request($method, $target, 'HTTP/1.1', array_merge(['Host', 'shop.example:8443'], $headers), $body, '203.0.113.7', 51234, 0, $scheme);
    }

    private static function toSymfony(Request $r): SymfonyRequest
    {
        return Bridge::toRequest($r, $r->serverParams() + ['SCRIPT_FILENAME' => '/srv/app/public/index.php', 'SCRIPT_NAME' => '/index.php', 'PHP_SELF' => '/index.php']);
    }

    public function testAGetBecomesTheRequestPHPFPMWouldGive(): void
    {
        $sf = self::toSymfony(self::request('GET', '/shop/items?a[]=1&a[]=2&b[c]=d&q=%20x', [
            'Cookie', 'theme=dark; x.y=1', 'Accept', 'application/json', 'X-Requested-With', 'XMLHttpRequest',
        ]));
        self::assertSame('GET', $sf->getMethod());
        self::assertSame(['a' => ['1', '2'], 'b' => ['c' => 'd'], 'q' => ' x'], $sf->query->all());
        self::assertSame(['theme' => 'dark', 'x_y' => '1'], $sf->cookies->all());
        self::assertSame('application/json', $sf->headers->get('accept'));
        self::assertTrue($sf->isXmlHttpRequest());
        self::assertSame('/shop/items', $sf->getPathInfo());
        self::assertSame('', $sf->getBaseUrl());
        self::assertSame('http://shop.example:8443/shop/items?a%5B0%5D=1&a%5B1%5D=2&b%5Bc%5D=d&q=%20x', $sf->getUri());
        self::assertSame(['203.0.113.7', 8443, 'shop.example', false], [$sf->getClientIp(), $sf->getPort(), $sf->getHost(), $sf->isSecure()]);
        // nginx sends both, empty, for a request without a body.
        self::assertSame(['', ''], [$sf->server->get('CONTENT_TYPE'), $sf->server->get('CONTENT_LENGTH')]);
        self::assertSame(8443, $sf->server->get('SERVER_PORT'));
        self::assertSame('', $sf->getContent());
    }

    public function testHTTPSAndTrustedProxies(): void
    {
        self::assertTrue(self::toSymfony(self::request('GET', '/', [], '', 'https'))->isSecure());
        SymfonyRequest::setTrustedProxies(['203.0.113.0/24'], SymfonyRequest::HEADER_X_FORWARDED_FOR | SymfonyRequest::HEADER_X_FORWARDED_PROTO);
        try {
            $sf = self::toSymfony(self::request('GET', '/', ['X-Forwarded-For', '198.51.100.1', 'X-Forwarded-Proto', 'https']));
            self::assertSame(['198.51.100.1', true], [$sf->getClientIp(), $sf->isSecure()]);
        } finally {
            SymfonyRequest::setTrustedProxies([], -1);
        }
    }

    public function testFormsJSONAndPUT(): void
    {
        $form = self::toSymfony(self::request('POST', '/f?x=1', ['Content-Type', 'application/x-www-form-urlencoded'], 'name=Ann+Lee&tags[]=a&tags[]=b'));
        self::assertSame(['name' => 'Ann Lee', 'tags' => ['a', 'b']], $form->request->all());
        self::assertSame('name=Ann+Lee&tags[]=a&tags[]=b', $form->getContent());
        self::assertSame('form', $form->getContentType());

        $json = self::toSymfony(self::request('POST', '/j', ['Content-Type', 'application/json'], '{"a":1}'));
        self::assertSame([], $json->request->all(), 'PHP fills $_POST for forms only');
        self::assertSame('{"a":1}', $json->getContent());
        self::assertSame(['a' => 1], $json->toArray());

        // createFromGlobals parses an urlencoded PUT, PATCH or DELETE itself.
        $put = self::toSymfony(self::request('PUT', '/p', ['Content-Type', 'application/x-www-form-urlencoded'], 'a=1&b=2'));
        self::assertSame(['a' => '1', 'b' => '2'], $put->request->all());
    }

    public function testUploadsAreValidAndMovable(): void
    {
        $boundary = 'XyZ';
        $body = "--$boundary\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nQ3\r\n"
            . "--$boundary\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"report.bin\"\r\nContent-Type: application/x-report\r\n\r\n\x00\x01report\r\n"
            . "--$boundary\r\nContent-Disposition: form-data; name=\"docs[]\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
            . "--$boundary\r\nContent-Disposition: form-data; name=\"none\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n"
            . "--$boundary--\r\n";
        $r = self::request('POST', '/upload', ['Content-Type', "multipart/form-data; boundary=$boundary"], $body);
        $sf = self::toSymfony($r);
        try {
            self::assertSame(['title' => 'Q3'], $sf->request->all());
            self::assertSame('', $sf->getContent(), 'php://input is empty for multipart bodies');
            $doc = $sf->files->get('doc');
            self::assertInstanceOf(UploadedFile::class, $doc);
            self::assertTrue($doc->isValid(), 'a drover upload is valid without is_uploaded_file()');
            self::assertSame(['report.bin', 'application/x-report', 8], [$doc->getClientOriginalName(), $doc->getClientMimeType(), $doc->getSize()]);
            self::assertSame('first', file_get_contents($sf->files->get('docs')[0]->getPathname()));
            self::assertNull($sf->files->get('none'), 'a file input left empty is null, as FileBag makes it');
            $dir = sys_get_temp_dir() . '/drover-bridge-' . getmypid();
            $moved = $doc->move($dir, 'kept.bin');
            self::assertSame("\x00\x01report", file_get_contents($moved->getPathname()));
            unlink($moved->getPathname());
            rmdir($dir);
        } finally {
            $r->cleanup();
        }
    }

    public function testTheRequestFactoryIsUsed(): void
    {
        $mine = null;
        SymfonyRequest::setFactory(static function (...$args) use (&$mine): SymfonyRequest {
            return $mine = new class(...$args) extends SymfonyRequest {
            };
        });
        try {
            $sf = self::toSymfony(self::request('GET', '/'));
            self::assertNotNull($mine);
            self::assertSame($mine, $sf);
        } finally {
            SymfonyRequest::setFactory(null);
        }
    }

    public function testAResponseKeepsItsHeadersAndCookies(): void
    {
        $res = new JsonResponse(['ok' => true], 201, ['X-Trace' => ['a', 'b']]);
        $res->headers->setCookie(Cookie::create('theme', 'dark', 0, '/', null, false, false));
        $res->headers->clearCookie('old');
        $out = Bridge::toResponse($res);
        self::assertSame(201, $out->status);
        self::assertSame('{"ok":true}', $out->body);
        $headers = $out->headers();
        self::assertSame(['a', 'b'], $headers['X-Trace']);
        self::assertSame(['application/json'], $headers['Content-Type']);
        self::assertSame('theme=dark; path=/; samesite=lax', $headers['Set-Cookie'][0]);
        self::assertMatchesRegularExpression('/^old=deleted; expires=[^;]+; Max-Age=0; path=\/; httponly$/', $headers['Set-Cookie'][1]);
    }

    /** @return list<string> what a writer body wrote, piece by piece */
    private static function pieces(\Closure $body): array
    {
        $got = [];
        $body(static function (string $s) use (&$got): void {
            $got[] = $s;
        });
        return $got;
    }

    public function testAStreamedResponseGoesOutAtEachFlushAndInChunks(): void
    {
        $res = new StreamedResponse(static function (): void {
            echo 'one ';
            echo 'two';
            ob_flush();
            flush();
            echo str_repeat('x', 10000);
            echo 'end';
        });
        $out = Bridge::toResponse($res);
        self::assertInstanceOf(\Closure::class, $out->body);
        $level = ob_get_level();
        $got = self::pieces($out->body);
        self::assertSame($level, ob_get_level());
        self::assertSame('one two', $got[0], 'ob_flush() sends what was printed so far');
        self::assertSame('one two' . str_repeat('x', 10000) . 'end', implode('', $got));
        self::assertGreaterThanOrEqual(3, count($got), 'a large print goes out in pieces: ' . implode(',', array_map('strlen', $got)));
    }

    public function testAStreamLeftWithOpenBuffersIsSentWhole(): void
    {
        $out = Bridge::toResponse(new StreamedResponse(static function (): void {
            ob_start();
            echo 'inside a buffer the callback left open';
        }));
        $level = ob_get_level();
        self::assertSame(['inside a buffer the callback left open'], self::pieces($out->body));
        self::assertSame($level, ob_get_level());
    }

    public function testAFailingWriterIsThrownAfterTheCallback(): void
    {
        $out = Bridge::toResponse(new StreamedResponse(static function (): void {
            echo 'a';
            ob_flush();
            echo 'b';
        }));
        $level = ob_get_level();
        try {
            ($out->body)(static function (string $s): void {
                throw new \RuntimeException("client gone at $s");
            });
            self::fail('no exception');
        } catch (\RuntimeException $e) {
            self::assertSame('client gone at a', $e->getMessage());
        }
        self::assertSame($level, ob_get_level());
    }

    public function testABinaryFileResponseSendsTheRangeAsked(): void
    {
        $file = tempnam(sys_get_temp_dir(), 'drover');
        $bytes = random_bytes(200000);
        file_put_contents($file, $bytes);
        $res = new BinaryFileResponse($file, 200, ['Content-Type' => 'application/octet-stream'], false, null, false, false);
        $req = SymfonyRequest::create('/download', 'GET', [], [], [], ['HTTP_RANGE' => 'bytes=1000-150999']);
        $res->prepare($req);
        $res->deleteFileAfterSend();
        $out = Bridge::toResponse($res);
        self::assertSame(206, $out->status);
        self::assertSame('150000', $out->header('content-length'));
        self::assertSame('bytes 1000-150999/200000', $out->header('content-range'));
        $got = self::pieces($out->body);
        self::assertSame(substr($bytes, 1000, 150000), implode('', $got));
        self::assertLessThanOrEqual(Bridge::FILE_CHUNK + 16384, max(array_map('strlen', $got)));
        self::assertFileDoesNotExist($file, 'deleteFileAfterSend');
    }

    public function testAPlainResponseIsAString(): void
    {
        $out = Bridge::toResponse(new SymfonyResponse('hello', 404, ['Content-Type' => 'text/plain']));
        self::assertSame([404, 'hello', 'text/plain'], [$out->status, $out->body, $out->header('content-type')]);
    }
}
