<?php

declare(strict_types=1);

namespace Drover\Http;

/**
 * An HTTP response for drover to send: status, headers and a body. The body
 * is a string, or streamed: an iterable of strings (a generator: each piece
 * goes out as it is produced, as server-sent events need), a readable
 * stream resource (read in 64 KiB pieces), or a Closure that writes: it is
 * called once, after the head has gone out, with a function that sends
 * each string it is given at once (`fn (\Closure $write) => $write('…')`;
 * calling it after the Closure returned throws a LogicException). drover
 * frames it: Content-Length for a string, chunked for a stream unless a
 * Content-Length header is set.
 *
 *     return Response::text('Hello, World!');
 *     return Response::json(['id' => 7], 201);
 *     return new Response(200, ['Content-Type' => 'text/event-stream'], (function () {
 *         foreach (range(1, 3) as $i) { yield "data: $i\n\n"; sleep(1); }
 *     })());
 */
final class Response
{
    /** @var array<string, array{string, list<string>}> lower-case name => [name as given, values] */
    private array $headers = [];

    /**
     * @param array<string, string|list<string>> $headers
     * @param string|iterable<string>|resource|\Closure(\Closure(string): void): void $body
     */
    public function __construct(public int $status = 200, array $headers = [], public mixed $body = '')
    {
        foreach ($headers as $name => $value) {
            $name = (string) $name;
            $this->headers[strtolower($name)] = [$name, is_string($value) ? [$value] : array_values(array_map('strval', (array) $value))];
        }
    }

    public static function text(string $text, int $status = 200): self
    {
        $r = new self($status, body: $text);
        $r->headers['content-type'] = ['Content-Type', ['text/plain; charset=utf-8']];
        return $r;
    }

    public static function html(string $html, int $status = 200): self
    {
        $r = new self($status, body: $html);
        $r->headers['content-type'] = ['Content-Type', ['text/html; charset=utf-8']];
        return $r;
    }

    /** A JSON body; the flags are json_encode's (it throws on values it cannot encode). */
    public static function json(mixed $data, int $status = 200, int $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE): self
    {
        $r = new self($status, body: json_encode($data, $flags | JSON_THROW_ON_ERROR));
        $r->headers['content-type'] = ['Content-Type', ['application/json']];
        return $r;
    }

    public static function redirect(string $location, int $status = 302): self
    {
        return new self($status, ['Location' => $location]);
    }

    /** Replaces a header. */
    public function setHeader(string $name, string|array $value): self
    {
        $this->headers[strtolower($name)] = [$name, is_string($value) ? [$value] : array_values(array_map('strval', (array) $value))];
        return $this;
    }

    /** Adds a value to a header (Set-Cookie, Vary …). */
    public function addHeader(string $name, string $value): self
    {
        $key = strtolower($name);
        if (isset($this->headers[$key])) {
            $this->headers[$key][1][] = $value;
        } else {
            $this->headers[$key] = [$name, [$value]];
        }
        return $this;
    }

    public function removeHeader(string $name): self
    {
        unset($this->headers[strtolower($name)]);
        return $this;
    }

    public function header(string $name): ?string
    {
        $h = $this->headers[strtolower($name)] ?? null;
        return $h === null ? null : implode(', ', $h[1]);
    }

    /** @return array<string, list<string>> name as given => values */
    public function headers(): array
    {
        $out = [];
        foreach ($this->headers as [$name, $values]) {
            $out[$name] = $values;
        }
        return $out;
    }

    /**
     * Adds a Set-Cookie header, as PHP's setcookie() would send it.
     *
     * @param array{expires?: int, path?: string, domain?: string, secure?: bool, httponly?: bool, samesite?: string} $options
     */
    public function setCookie(string $name, string $value, array $options = []): self
    {
        $c = rawurlencode($name) . '=' . rawurlencode($value);
        if (isset($options['expires']) && $options['expires'] > 0) {
            $c .= '; expires=' . gmdate('D, d M Y H:i:s \G\M\T', $options['expires']);
            $c .= '; Max-Age=' . max(0, $options['expires'] - time());
        }
        foreach (['path' => 'path', 'domain' => 'domain', 'samesite' => 'SameSite'] as $k => $attr) {
            if (($options[$k] ?? '') !== '') {
                $c .= "; $attr=" . $options[$k];
            }
        }
        if ($options['secure'] ?? false) {
            $c .= '; secure';
        }
        if ($options['httponly'] ?? false) {
            $c .= '; HttpOnly';
        }
        return $this->addHeader('Set-Cookie', $c);
    }

    /** @return list<string> name, value, name, value … as the Response frame carries them */
    public function headerList(): array
    {
        $out = [];
        foreach ($this->headers as [$name, $values]) {
            foreach ($values as $v) {
                $out[] = $name;
                $out[] = $v;
            }
        }
        return $out;
    }

    /**
     * The headers as kept here: lower-case name => [name as given, values],
     * for drover's PHP extension, which builds wireHeaders' list from it in C.
     *
     * @internal for the SDK's workers
     * @return array<string, array{string, list<string>}>
     */
    public function headerMap(): array
    {
        return $this->headers;
    }

    /**
     * headerList() with ";charset=$charset" added to a text/* Content-Type
     * that has none, as PHP's SAPIs do for header() under php-fpm (ini
     * default_charset, read only when needed, unless $charset is given), so
     * that an app sends what it sent there.
     *
     * @internal for the SDK's workers
     * @return list<string>
     */
    public function wireHeaders(?string $charset = null): array
    {
        $out = [];
        foreach ($this->headers as $key => [$name, $values]) {
            if ($key === 'content-type' && isset($values[0]) && strncasecmp($values[0], 'text/', 5) === 0 && stripos($values[0], 'charset=') === false
                && ($charset ??= (string) ini_get('default_charset')) !== '') {
                $values[0] .= ";charset=$charset";
            }
            foreach ($values as $v) {
                $out[] = $name;
                $out[] = $v;
            }
        }
        return $out;
    }

    /**
     * Turns what a handler returned into a Response: a Response as it is, a
     * string as an HTML page (PHP's default content type), an array or
     * JsonSerializable as JSON, null as 204 No Content.
     *
     * @throws \UnexpectedValueException for anything else
     */
    public static function from(mixed $r): self
    {
        return match (true) {
            $r instanceof self => $r,
            is_string($r) => new self(200, ['Content-Type' => 'text/html; charset=UTF-8'], $r),
            is_array($r), $r instanceof \JsonSerializable => self::json($r),
            $r === null => new self(204),
            default => throw new \UnexpectedValueException(sprintf(
                'the handler returned %s: return a Drover\Http\Response, a string, an array (JSON) or null', get_debug_type($r))),
        };
    }
}
