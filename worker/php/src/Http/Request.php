<?php

declare(strict_types=1);

namespace Drover\Http;

/**
 * One HTTP request, as drover's master parsed it. The plain facts are
 * read-only properties; what needs parsing (query, cookies, form and JSON
 * bodies, uploads) is parsed on first use.
 *
 *     $r->method            // "POST"
 *     $r->target            // "/search?q=drover" (as sent)
 *     $r->path()            // "/search"
 *     $r->query('q')        // "drover"
 *     $r->header('accept')  // "text/html, *\/*" (names are case-insensitive)
 *     $r->cookie('sid')
 *     $r->post('name')      // urlencoded and multipart fields
 *     $r->json()            // a JSON body, decoded to arrays
 *     $r->file('avatar')    // an UploadedFile
 *     $r->remoteAddr        // "203.0.113.7"
 */
final class Request
{
    /** @var array<string, list<string>>|null lower-case name => values */
    private ?array $headers = null;
    /** @var list<string>|null the headers as received; null: derived from $server when first asked (fromServer) */
    private ?array $headerList;
    private ?array $query = null;
    private ?array $cookies = null;
    private bool $bodyParsed = false;
    private mixed $parsedBody = null;
    private array $files = [];
    /** @var array<string, string|int|float>|null serverParams(), built once */
    private ?array $server = null;
    /**
     * $_SERVER's key of each header name seen ("User-Agent" => "HTTP_USER_AGENT"),
     * shared by the requests of the process; at most SERVER_KEYS_MAX names.
     *
     * @var array<string, string>
     */
    private static array $serverKeys = [];
    private const SERVER_KEYS_MAX = 512;
    public readonly float $time;

    /**
     * @param list<string> $headerList name, value, name, value … as received
     */
    public function __construct(
        public readonly string $method,
        public readonly string $target,
        public readonly string $protocol = 'HTTP/1.1',
        array $headerList = [],
        public readonly string $body = '',
        public readonly string $remoteAddr = '',
        public readonly int $remotePort = 0,
        public readonly int $listener = 0,
        public readonly string $scheme = 'http',
    ) {
        $this->headerList = $headerList;
        $this->time = microtime(true);
    }

    /**
     * Builds the request of a Request frame in the CGI layout (docs/protocol.md):
     * $s is the frame's map, $_SERVER's keys of the request and drover's
     * own (body, body_follows, body_at, listener), which are taken out. The
     * map is serverParams() as it is, with REQUEST_TIME added; the header
     * list is derived from it only if asked for. $s is taken over (by
     * reference, so that adding REQUEST_TIME does not copy the map): the
     * caller's variable holds the request's map afterwards.
     *
     * @param array<string, mixed> $s
     */
    public static function fromServer(array &$s, string $body): self
    {
        $listener = 0;
        if (isset($s['listener']) || isset($s['body']) || isset($s['body_follows']) || isset($s['body_at'])) {
            $listener = (int) ($s['listener'] ?? 0);
            unset($s['listener'], $s['body'], $s['body_follows'], $s['body_at']);
        }
        $r = new self((string) $s['REQUEST_METHOD'], (string) ($s['REQUEST_URI'] ?? ''), (string) ($s['SERVER_PROTOCOL'] ?? 'HTTP/1.1'),
            [], $body, (string) ($s['REMOTE_ADDR'] ?? ''), (int) ($s['REMOTE_PORT'] ?? 0), $listener);
        $r->headerList = null;
        $s['REQUEST_TIME'] = (int) $r->time;
        $s['REQUEST_TIME_FLOAT'] = $r->time;
        $s['DOCUMENT_URI'] ??= $r->path(); // the master leaves it to us for absolute-form targets
        $r->server = $s;
        return $r;
    }

    /** Builds the request of the Request frame $m (docs/protocol.md) with its whole body. */
    public static function fromFrame(array $m, string $body): self
    {
        $remote = (string) ($m['remote'] ?? '');
        $port = 0;
        if (($i = strrpos($remote, ':')) !== false && ctype_digit($p = substr($remote, $i + 1))) {
            $port = (int) $p;
            $remote = $remote[0] === '[' ? trim(substr($remote, 0, $i), '[]') : substr($remote, 0, $i);
        }
        $headers = $m['headers'] ?? [];
        for ($i = 0, $n = count($headers) - 1; $i < $n; $i += 2) {
            if (str_contains($headers[$i], '_')) {
                // Left out, as the CGI layout leaves it out (serverKey):
                // a handler sees the same headers in both layouts.
                $headers = self::withoutUnderscores($headers);
                break;
            }
        }
        return new self((string) $m['method'], (string) $m['target'], (string) (($m['proto'] ?? '') ?: 'HTTP/1.1'),
            $headers, $body, $remote, $port, (int) ($m['listener'] ?? 0));
    }

    /**
     * @param list<string> $list
     * @return list<string>
     */
    private static function withoutUnderscores(array $list): array
    {
        $out = [];
        for ($i = 0, $n = count($list) - 1; $i < $n; $i += 2) {
            if (!str_contains($list[$i], '_')) {
                $out[] = $list[$i];
                $out[] = $list[$i + 1];
            }
        }
        return $out;
    }

    /**
     * Builds the request PHP's SAPI is serving (php-fpm, Apache's mod_php,
     * `php -S`) from its globals, so that a script written for drover also
     * runs there (Drover\Http\Worker::serve does this outside drover).
     */
    public static function fromGlobals(): self
    {
        $list = self::listFromServer($_SERVER);
        $r = new self($_SERVER['REQUEST_METHOD'] ?? 'GET', $_SERVER['REQUEST_URI'] ?? '/', $_SERVER['SERVER_PROTOCOL'] ?? 'HTTP/1.1',
            $list, (string) file_get_contents('php://input'), $_SERVER['REMOTE_ADDR'] ?? '', (int) ($_SERVER['REMOTE_PORT'] ?? 0),
            0, (($_SERVER['HTTPS'] ?? '') !== '' && $_SERVER['HTTPS'] !== 'off') ? 'https' : 'http');
        // PHP parsed the body and stored the uploads already.
        if (($_SERVER['REQUEST_METHOD'] ?? '') === 'POST' && ($_POST !== [] || $_FILES !== [])) {
            $r->bodyParsed = true;
            $r->parsedBody = $_POST;
            $r->files = self::filesFromGlobals($_FILES);
        }
        return $r;
    }

    /**
     * The header list of a $_SERVER-like array: HTTP_* keys, CONTENT_TYPE
     * and CONTENT_LENGTH, names in canonical form (User-Agent).
     *
     * @param array<string, mixed> $s
     * @return list<string>
     */
    private static function listFromServer(array $s): array
    {
        $list = [];
        foreach ($s as $k => $v) {
            if (str_starts_with((string) $k, 'HTTP_')) {
                $list[] = ucwords(strtolower(strtr(substr($k, 5), '_', '-')), '-');
                $list[] = (string) $v;
            } elseif (($k === 'CONTENT_TYPE' || $k === 'CONTENT_LENGTH') && (string) $v !== '') {
                $list[] = $k === 'CONTENT_TYPE' ? 'Content-Type' : 'Content-Length';
                $list[] = (string) $v;
            }
        }
        return $list;
    }

    /** @return array<string, mixed> */
    private static function filesFromGlobals(array $files): array
    {
        $out = [];
        foreach ($files as $name => $f) {
            $out[$name] = self::fileTree($f['tmp_name'], $f['size'], $f['error'], $f['name'], $f['type'], $f['full_path'] ?? null);
        }
        return $out;
    }

    private static function fileTree(mixed $tmp, mixed $size, mixed $error, mixed $name, mixed $type, mixed $fullPath): mixed
    {
        if (!is_array($tmp)) {
            return new UploadedFile((string) $tmp, (int) $size, (int) $error, $name, $type, $fullPath);
        }
        $out = [];
        foreach ($tmp as $k => $t) {
            $out[$k] = self::fileTree($t, $size[$k], $error[$k], $name[$k], $type[$k], $fullPath[$k] ?? null);
        }
        return $out;
    }

    /** The path of the target, without the query ("/" for "*" and absolute-form without a path). */
    public function path(): string
    {
        $t = $this->target;
        if ($t !== '' && $t[0] !== '/') {
            $p = parse_url($t, PHP_URL_PATH);
            return is_string($p) && $p !== '' ? $p : '/';
        }
        $i = strpos($t, '?');
        return $i === false ? $t : substr($t, 0, $i);
    }

    /** The query string, without '?'. */
    public function queryString(): string
    {
        $i = strpos($this->target, '?');
        return $i === false ? '' : substr($this->target, $i + 1);
    }

    /**
     * The query parameters as PHP's $_GET has them (brackets make arrays),
     * or one of them ($default when absent).
     */
    public function query(?string $name = null, mixed $default = null): mixed
    {
        if ($this->query === null) {
            parse_str($this->queryString(), $this->query);
        }
        return $name === null ? $this->query : ($this->query[$name] ?? $default);
    }

    /** @return array<string, list<string>> every header, lower-case name => values in order */
    public function headers(): array
    {
        if ($this->headers === null) {
            $this->headers = [];
            $list = $this->headerList ??= self::listFromServer($this->server ?? []);
            for ($i = 0, $n = count($list) - 1; $i < $n; $i += 2) {
                $this->headers[strtolower($list[$i])][] = $list[$i + 1];
            }
        }
        return $this->headers;
    }

    /** @return list<string> header name, value, … as received (names as the client wrote them) */
    public function headerList(): array
    {
        return $this->headerList ??= self::listFromServer($this->server ?? []);
    }

    /** A header's value (several values joined with ", "; Cookie with "; "), or null. */
    public function header(string $name): ?string
    {
        if ($this->headerList === null && $this->headers === null) {
            // The CGI layout: one look-up in $_SERVER's keys, where the
            // master joined repeated headers as this method does.
            $k = strtoupper(strtr($name, '-', '_'));
            $v = $this->server[$k === 'CONTENT_TYPE' || $k === 'CONTENT_LENGTH' ? $k : "HTTP_$k"] ?? null;
            return $v === null ? null : (string) $v;
        }
        $v = ($this->headers ?? $this->headers())[strtolower($name)] ?? null;
        if ($v === null) {
            return null;
        }
        return count($v) === 1 ? $v[0] : implode(strcasecmp($name, 'cookie') === 0 ? '; ' : ', ', $v);
    }

    public function hasHeader(string $name): bool
    {
        return isset($this->headers()[strtolower($name)]);
    }

    /** The Host header, or '' (HTTP/1.0 may have none). */
    public function host(): string
    {
        return $this->header('host') ?? '';
    }

    /** The full URI: scheme, host and target. */
    public function uri(): string
    {
        if ($this->target !== '' && $this->target[0] !== '/' && $this->target !== '*') {
            return $this->target;
        }
        return $this->scheme . '://' . ($this->host() !== '' ? $this->host() : 'localhost') . $this->target;
    }

    /** The media type of the body, lower-case, without parameters ("application/json"). */
    public function contentType(): string
    {
        $ct = (string) $this->header('content-type');
        $i = strpos($ct, ';');
        return strtolower(trim($i === false ? $ct : substr($ct, 0, $i)));
    }

    /** The cookies as PHP's $_COOKIE has them, or one of them. */
    public function cookies(): array
    {
        if ($this->cookies === null) {
            $h = $this->cookieHeader();
            $this->cookies = $h === null ? [] : BodyParser::parseCookies($h);
        }
        return $this->cookies;
    }

    /**
     * The Cookie header (several joined with "; "), or null: found without
     * building the header map, as sessions look at it on every request.
     */
    public function cookieHeader(): ?string
    {
        if ($this->server !== null) {
            return $this->server['HTTP_COOKIE'] ?? null;
        }
        $h = null;
        for ($i = 0, $n = count($this->headerList) - 1; $i < $n; $i += 2) {
            if (strcasecmp($this->headerList[$i], 'cookie') === 0) {
                $h = $h === null ? $this->headerList[$i + 1] : $h . '; ' . $this->headerList[$i + 1];
            }
        }
        return $h;
    }

    public function cookie(string $name, ?string $default = null): mixed
    {
        return $this->cookies()[$name] ?? $default;
    }

    /**
     * The parsed body: form fields for application/x-www-form-urlencoded and
     * multipart/form-data (as PHP's $_POST), the decoded JSON for a JSON
     * body (arrays; null when invalid), null otherwise.
     */
    public function parsedBody(): mixed
    {
        $this->parseBody();
        return $this->parsedBody;
    }

    /** A form field ($default when absent or the body is not a form). */
    public function post(string $name, mixed $default = null): mixed
    {
        $b = $this->parsedBody();
        return is_array($b) && !$this->isJson() ? ($b[$name] ?? $default) : $default;
    }

    /** The JSON body decoded to arrays, or null when it is not valid JSON. */
    public function json(): mixed
    {
        return $this->isJson() ? $this->parsedBody() : json_decode($this->body, true);
    }

    private function isJson(): bool
    {
        $ct = $this->contentType();
        return $ct === 'application/json' || str_ends_with($ct, '+json');
    }

    /**
     * The uploaded files of a multipart body, keyed as the form names them
     * (arrays for "docs[]"); each an UploadedFile.
     *
     * @return array<string, UploadedFile|array>
     */
    public function files(): array
    {
        $this->parseBody();
        return $this->files;
    }

    public function file(string $name): ?UploadedFile
    {
        $f = $this->files()[$name] ?? null;
        return $f instanceof UploadedFile ? $f : null;
    }

    private function parseBody(): void
    {
        if ($this->bodyParsed) {
            return;
        }
        $this->bodyParsed = true;
        if ($this->body !== '') {
            [$this->parsedBody, $this->files] = BodyParser::parse((string) $this->header('content-type'), $this->body);
        }
    }

    /**
     * The request as PHP's $_SERVER describes it under php-fpm:
     * REQUEST_METHOD, REQUEST_URI, QUERY_STRING, SERVER_PROTOCOL,
     * REMOTE_ADDR, REMOTE_PORT, CONTENT_TYPE, CONTENT_LENGTH, HTTP_* …
     *
     * @return array<string, string|int|float>
     */
    public function serverParams(): array
    {
        return $this->server ??= $this->buildServerParams();
    }

    /** @return array<string, string|int|float> */
    private function buildServerParams(): array
    {
        $t = $this->target;
        $q = strpos($t, '?');
        $s = [
            'REQUEST_METHOD' => $this->method,
            'REQUEST_URI' => $t,
            'QUERY_STRING' => $q === false ? '' : substr($t, $q + 1),
            'SERVER_PROTOCOL' => $this->protocol,
            'REMOTE_ADDR' => $this->remoteAddr,
            'REMOTE_PORT' => $this->remotePort,
            'REQUEST_SCHEME' => $this->scheme,
            'REQUEST_TIME' => (int) $this->time,
            'REQUEST_TIME_FLOAT' => $this->time,
            'DOCUMENT_URI' => $t === '' || $t[0] !== '/' ? $this->path() : ($q === false ? $t : substr($t, 0, $q)),
        ];
        if ($this->scheme === 'https') {
            $s['HTTPS'] = 'on';
        }
        // One pass over the headers as received (this runs for every
        // request that sets the globals): HTTP_* keys, repeated headers
        // joined as PHP's SAPIs join them.
        $keys = self::$serverKeys;
        for ($i = 0, $n = count($this->headerList) - 1; $i < $n; $i += 2) {
            $key = $keys[$this->headerList[$i]] ?? self::serverKey($this->headerList[$i]);
            if ($key === '') {
                continue; // a name with an underscore (serverKey)
            }
            $v = $this->headerList[$i + 1];
            $s[$key] = isset($s[$key]) ? $s[$key] . ($key === 'HTTP_COOKIE' ? '; ' : ', ') . $v : $v;
        }
        if (isset($s['HTTP_HOST'])) {
            $host = $s['HTTP_HOST'];
            $colon = strrpos($host, ':');
            $s['SERVER_NAME'] = $colon !== false && $colon > strrpos($host, ']') && ctype_digit(substr($host, $colon + 1))
                ? substr($host, 0, $colon) : $host;
        }
        return $s;
    }

    /**
     * $_SERVER's key of header $name, kept for the next requests (up to
     * SERVER_KEYS_MAX names); '' for a name with an underscore, which is
     * left out, as nginx and Apache leave it out of a CGI environment
     * (X_Forwarded_For would meet the X-Forwarded-For a proxy set).
     */
    private static function serverKey(string $name): string
    {
        $key = str_contains($name, '_') ? '' : strtoupper(strtr($name, '-', '_'));
        if ($key !== '' && $key !== 'CONTENT_TYPE' && $key !== 'CONTENT_LENGTH') {
            $key = 'HTTP_' . $key;
        }
        if (count(self::$serverKeys) < self::SERVER_KEYS_MAX) {
            self::$serverKeys[$name] = $key;
        }
        return $key;
    }

    /** Removes the temporary files of uploads the handler did not move. */
    public function cleanup(): void
    {
        if ($this->files === []) {
            return;
        }
        array_walk_recursive($this->files, static function (mixed $f): void {
            if ($f instanceof UploadedFile && !$f->isMoved() && $f->getError() === UPLOAD_ERR_OK && is_file($f->getFile())) {
                @unlink($f->getFile());
            }
        });
    }
}
