<?php

declare(strict_types=1);

namespace Drover\Symfony;

use Drover\Http\Request;
use Drover\Http\Response;
use Drover\Http\UploadedFile;
use Symfony\Component\HttpFoundation\BinaryFileResponse;
use Symfony\Component\HttpFoundation\File\UploadedFile as SymfonyUploadedFile;
use Symfony\Component\HttpFoundation\InputBag;
use Symfony\Component\HttpFoundation\Request as SymfonyRequest;
use Symfony\Component\HttpFoundation\Response as SymfonyResponse;

/**
 * Turns a drover request into an HttpFoundation Request as
 * Request::createFromGlobals() builds it under php-fpm, and an
 * HttpFoundation Response into a drover response as Response::send()
 * would send it. Used by Drover\Symfony\Runner; usable on its own by code
 * that runs an HttpKernel itself:
 *
 *     Drover\Http\Worker::serve(fn (Drover\Http\Request $r) =>
 *         Bridge::toResponse($kernel->handle(Bridge::toRequest($r, $_SERVER))));
 */
final class Bridge
{
    /**
     * Output of a streamed response (StreamedResponse, or any Response
     * whose sendContent() is its own) is sent in pieces of this size, and
     * at each ob_flush(): what php-fpm does with Debian's output_buffering.
     */
    public const STREAM_CHUNK = 4096;

    /** A BinaryFileResponse's file is sent in pieces of this size. */
    public const FILE_CHUNK = 65536;

    /** @var array<class-string, bool> response class => whether it has its own sendContent() */
    private static array $streams = [];

    /** Reads Request::$requestFactory (set by Request::setFactory()). */
    private static ?\Closure $factory = null;

    /**
     * The HttpFoundation Request of $r. $server is the request's $_SERVER
     * (what Drover\Http\Worker installs, or $r->serverParams() and more);
     * SERVER_PORT is added when absent. Form fields are parsed for POST
     * (and for PUT, PATCH and DELETE urlencoded bodies, as
     * createFromGlobals does); uploads become UploadedFile objects in test
     * mode, which isValid() and move() accept without
     * is_uploaded_file() (PHP's CLI did not receive them), of class
     * $fileClass (a subclass of Symfony's UploadedFile, such as Laravel's).
     * The factory of Request::setFactory() is used when one is set, unless
     * $class names the class to build (a subclass of Request with its
     * constructor, such as Laravel's).
     *
     * @param class-string<SymfonyUploadedFile> $fileClass
     * @param ?class-string<SymfonyRequest> $class
     */
    public static function toRequest(Request $r, array $server, string $fileClass = SymfonyUploadedFile::class, ?string $class = null): SymfonyRequest
    {
        // nginx passes these two always (fastcgi_params), empty when the
        // request has no body: Symfony's HeaderBag then has them as ''.
        $server += ['CONTENT_TYPE' => '', 'CONTENT_LENGTH' => ''];
        if (!isset($server['SERVER_PORT'])) {
            $host = $r->host();
            $server['SERVER_PORT'] = preg_match('/:(\d+)$/', $host, $m) ? (int) $m[1] : ($r->scheme === 'https' ? 443 : 80);
        }
        $post = [];
        $files = [];
        $content = $r->body;
        if ($content !== '' && $r->method === 'POST') {
            $type = $r->contentType();
            if ($type === 'application/x-www-form-urlencoded') {
                $post = (array) $r->parsedBody();
            } elseif ($type === 'multipart/form-data') {
                $post = (array) $r->parsedBody();
                $files = self::files($r->files(), $fileClass);
                $content = ''; // PHP does not keep a multipart body (php://input is empty)
            }
        }
        if ($class !== null) {
            $request = new $class($r->query(), $post, [], $r->cookies(), $files, $server, $content);
        } elseif (($factory = (self::$factory ??= \Closure::bind(static fn () => SymfonyRequest::$requestFactory, null, SymfonyRequest::class))()) !== null) {
            $request = $factory($r->query(), $post, [], $r->cookies(), $files, $server, $content);
            if (!$request instanceof SymfonyRequest) {
                throw new \LogicException('The Request factory must return an instance of Symfony\Component\HttpFoundation\Request.');
            }
        } else {
            $request = new SymfonyRequest($r->query(), $post, [], $r->cookies(), $files, $server, $content);
        }
        if (str_starts_with($request->headers->get('CONTENT_TYPE', ''), 'application/x-www-form-urlencoded')
            && \in_array(strtoupper($r->method), ['PUT', 'DELETE', 'PATCH'], true)) {
            parse_str($r->body, $data);
            $request->request = new InputBag($data);
        }
        return $request;
    }

    /**
     * @param array<string, UploadedFile|array> $tree
     * @param class-string<SymfonyUploadedFile> $class
     */
    private static function files(array $tree, string $class): array
    {
        $out = [];
        foreach ($tree as $k => $f) {
            if (!$f instanceof UploadedFile) {
                $out[$k] = self::files($f, $class);
            } elseif ($f->getError() !== UPLOAD_ERR_NO_FILE) {
                $out[$k] = new $class($f->getFile(), (string) $f->getClientFilename(), $f->getClientMediaType() ?: null, $f->getError(), true);
            } else {
                // As $_FILES has it: FileBag makes a file input left empty null.
                $out[$k] = ['name' => (string) $f->getClientFilename(), 'type' => (string) $f->getClientMediaType(), 'tmp_name' => '', 'error' => UPLOAD_ERR_NO_FILE, 'size' => 0];
            }
        }
        return $out;
    }

    /**
     * The drover response of $res, with the headers and cookies
     * Response::send() sends, and PHP's default Content-Type
     * (text/html; charset=UTF-8) when it has none, as PHP's SAPI adds it
     * (except to 204 and 304, which nginx sends without). A response with its own sendContent()
     * (StreamedResponse, BinaryFileResponse) is streamed: sendContent()
     * runs once the head has gone out, and what it prints goes to the
     * client in pieces (STREAM_CHUNK, FILE_CHUNK) and at each ob_flush().
     */
    public static function toResponse(SymfonyResponse $res): Response
    {
        $out = new Response($res->getStatusCode());
        foreach ($res->headers->allPreserveCaseWithoutCookies() as $name => $values) {
            $out->setHeader((string) $name, array_map('strval', $values));
        }
        foreach ($res->headers->getCookies() as $cookie) {
            $out->addHeader('Set-Cookie', (string) $cookie);
        }
        $status = $res->getStatusCode();
        if ($status !== 204 && $status !== 304 && !$res->headers->has('Content-Type')) {
            // PHP's SAPI sends its default for a response that set none.
            $mime = (string) ini_get('default_mimetype');
            $charset = (string) ini_get('default_charset');
            if ($mime !== '') {
                $out->setHeader('Content-Type', $charset !== '' && str_starts_with($mime, 'text/') ? "$mime; charset=$charset" : $mime);
            }
        }
        $class = $res::class;
        $streams = self::$streams[$class] ??= (new \ReflectionMethod($res, 'sendContent'))->getDeclaringClass()->getName() !== SymfonyResponse::class;
        if (!$streams) {
            $out->body = (string) $res->getContent();
            return $out;
        }
        $chunk = $res instanceof BinaryFileResponse ? self::FILE_CHUNK : self::STREAM_CHUNK;
        $out->body = static function (\Closure $write) use ($res, $chunk): void {
            self::capture(static fn () => $res->sendContent(), $write, $chunk);
        };
        return $out;
    }

    /**
     * Runs $fn with what it prints passed to $write in pieces of about
     * $chunk bytes, and at each ob_flush(). A failure of $write (the
     * client gone, the channel broken) is thrown once $fn returned.
     */
    public static function capture(\Closure $fn, \Closure $write, int $chunk): void
    {
        $level = ob_get_level();
        $failure = null;
        ob_start(static function (string $buffer) use ($write, &$failure): string {
            // An output handler must not throw: keep the failure for later.
            if ($buffer !== '' && $failure === null) {
                try {
                    $write($buffer);
                } catch (\Throwable $e) {
                    $failure = $e;
                }
            }
            return '';
        }, $chunk);
        try {
            $fn();
        } finally {
            // Buffers $fn left open hand their output down to ours, and ours to $write.
            while (ob_get_level() > $level && @ob_end_flush()) {
            }
        }
        if ($failure !== null) {
            throw $failure;
        }
    }
}
