<?php

declare(strict_types=1);

namespace Drover\Runtime;

use Drover\Http\Request;
use Drover\Http\Response;

/**
 * Serves HTTP requests (Request frames) with a PHP callable, one at a time:
 * gathers the body (crediting it, flow control), runs the handler with its
 * output captured and PHP's request globals set, sends the response (in
 * pieces, within the flow-control window, when it is large or streamed),
 * then resets what must not leak into the next request.
 *
 * @internal Use Drover\Http\Worker::serve.
 */
final class HttpHandler implements Handler
{
    private ?int $id = null;
    /** The connection of the request being handled, for bind(); null between requests. */
    private static ?int $serving = null;
    private string $what = '';
    private bool $started = false;
    /** The response's last frame (FlagEnd) is written: nothing more may go out for this request. */
    private bool $ended = false;
    private bool $cancelled = false;
    /** Counts requests: a body writer kept past its request is told apart from the next one's. */
    private int $seq = 0;
    /** @var list<\Closure> what Worker::afterResponse() added for the request being handled */
    private static array $after = [];
    private int $unacked = 0;
    private bool $warnedStream = false;
    /** $_SERVER as the process has it, taken at the first request (after the channel's set-up tidied the environment). */
    private ?array $baseServer = null;
    /** PHP's session extension is loaded. */
    private readonly bool $sessions;
    /**
     * The loop's channel is drover's PHP extension's (NativeChannel): the
     * request is decoded, answered, and $_SERVER set and reset by the
     * extension's functions, called directly. Known at the first request.
     */
    private ?bool $native = null;
    /** $_SERVER was set by \Drover\Native\server_enter for the request being handled. */
    private bool $nativeServer = false;
    private ?Loop $loop = null;

    /** @param \Closure(Request): mixed $handler */
    public function __construct(private readonly \Closure $handler, private readonly bool $globals = true)
    {
        $this->sessions = function_exists('session_status');
    }

    public function role(): string
    {
        return 'worker';
    }

    public function current(): string
    {
        return $this->what;
    }

    public function frame(int $type, int $flags, int $id, string $payload): void
    {
        switch ($type) {
            case Frame::REQUEST:
                $this->request($id, $payload);
                return;
            case Frame::CONNECT:
            case Frame::DATA:
            case Frame::CLOSE:
                // A stream listener's events: this worker only serves HTTP.
                if (!$this->warnedStream) {
                    $this->warnedStream = true;
                    Log::line('this PHP worker serves HTTP (Drover\Http\Worker) but got events of a stream listener; they are answered without being handled (use Drover\Stream\Worker for stream listeners)');
                }
                Loop::get()->write(Frame::DONE, $id);
                return;
        }
        // Other types are for later protocol versions: ignored.
    }

    private function request(int $id, string $payload): void
    {
        // Codec::decodeRequest, inline: absent keys are Codec::REQUEST_ZEROS.
        $loop = $this->loop ??= Loop::get();
        $native = $this->native ??= $loop->channel() instanceof NativeChannel;
        $m = $native ? (\Drover\Native\decode($payload) ?? msgpack_unpack($payload)) : msgpack_unpack($payload);
        if (!is_array($m)) {
            throw new ProtocolError('undecodable request frame: want a msgpack map');
        }
        // The CGI layout (this worker's hello asks for it), or the default
        // one (a request the master encoded before it knew the worker).
        if (isset($m['REQUEST_METHOD'])) {
            $what = $m['REQUEST_METHOD'] . ' ' . ($m['REQUEST_URI'] ?? '');
        } elseif (isset($m['method'], $m['target'])) {
            $what = $m['method'] . ' ' . $m['target'];
        } else {
            throw new ProtocolError('undecodable request frame: no method or target');
        }
        $this->id = self::$serving = $id;
        $this->what = $what;
        $this->started = $this->ended = $this->cancelled = false;
        $this->unacked = 0;
        $this->seq++;
        self::$after = [];
        if ($loop->cancelledAhead($id)) {
            // Sent ahead, and its client left while it waited: not run.
            $loop->write(Frame::RESPONSE_BODY, $id, '', Frame::FLAG_END);
            $this->finish();
            return;
        }
        $body = (string) ($m['body'] ?? '');
        if (isset($m['body_follows']) && $m['body_follows'] === true) {
            $body = $this->readBody($id, $body);
        }
        if ($this->cancelled) {
            $this->finish();
            return;
        }
        $req = isset($m['REQUEST_METHOD']) ? Request::fromServer($m, $body) : Request::fromFrame($m, $body);
        unset($m); // the request holds the map now: $_SERVER's writes below copy nothing
        $level = $loop->startCapture();
        try {
            if ($this->globals) {
                $this->installGlobals($req);
            }
            if ($this->sessions) {
                $this->sessionFor($req);
            }
            $this->respond(($this->handler)($req));
        } catch (\Throwable $e) {
            Log::line(sprintf('uncaught %s in %s; answered %s, the worker carries on', Log::describe($e), $this->what,
                $this->started ? 'with a cut response' : '500'));
            $this->fail();
        } finally {
            $loop->endCapture($level, $this->what);
            if (self::$after) {
                $this->runAfter();
            }
            $this->reset($req);
        }
        $this->finish();
    }

    private function finish(): void
    {
        $this->id = self::$serving = null;
        $this->what = '';
        self::$after = [];
    }

    /**
     * Adds $fn to what runs once the response of the request being
     * handled has gone to drover (see Drover\Http\Worker::afterResponse).
     *
     * @throws \LogicException outside a request's handler
     */
    public static function afterResponse(\Closure $fn): void
    {
        if (self::$serving === null) {
            throw new \LogicException('Drover\Http\Worker::afterResponse: no request is being handled (call it from the handler)');
        }
        self::$after[] = $fn;
    }

    /**
     * Runs the afterResponse callbacks once the answer has left: its
     * frames are flushed to the master first, so that the client has its
     * response while they run. Each runs as a callback (what it throws or
     * prints is logged); one added while they run runs too.
     */
    private function runAfter(): void
    {
        $loop = Loop::get();
        $loop->flush();
        $what = $this->what;
        $this->what = "$what (after its response)";
        for ($i = 0; $i < count(self::$after); $i++) {
            $loop->callback("an afterResponse callback of $what", self::$after[$i]);
        }
        self::$after = [];
        $this->what = $what;
    }

    /**
     * Binds the connection of the request being handled to $uid
     * (dispatch_mode 5); the frame goes before the response.
     *
     * @throws \LogicException outside a request's handler
     */
    public static function bind(int $uid): void
    {
        if (self::$serving === null) {
            throw new \LogicException('Drover\Http\Worker::bind: no request is being handled (call it from the handler)');
        }
        StreamHandler::bind(self::$serving, $uid);
    }

    /** Reads the rest of the body, crediting it as it arrives so that the master keeps sending. */
    private function readBody(int $id, string $first): string
    {
        $loop = Loop::get();
        $parts = [$first];
        $uncredited = strlen($first);
        while (true) {
            [$type, $flags, , $data] = $loop->await(static fn (int $t, int $f, int $i) => $i === $id && ($t === Frame::REQUEST_BODY || ($t === Frame::CANCEL && ($f & Frame::FLAG_END) !== 0)));
            if ($type === Frame::CANCEL) {
                $this->cancelled = true;
                $loop->write(Frame::RESPONSE_BODY, $id, '', Frame::FLAG_END);
                return '';
            }
            $parts[] = $data;
            $uncredited += strlen($data);
            if (($flags & Frame::FLAG_END) !== 0) {
                return implode('', $parts);
            }
            if ($uncredited >= Frame::CREDIT_BATCH) {
                $loop->write(Frame::WINDOW_CREDIT, $id, Codec::encodeWindow($uncredited));
                $loop->flush();
                $uncredited = 0;
            }
        }
    }

    private function respond(mixed $result): void
    {
        $res = $result instanceof Response ? $result : Response::from($result);
        if ($this->sessions && session_status() === PHP_SESSION_ACTIVE) {
            $this->sendSessionCookie($res);
        }
        $loop = $this->loop;
        $body = $res->body;
        if (is_string($body) && strlen($body) <= Frame::MAX_CHUNK) {
            if (!$this->native || !\Drover\Native\answer($this->id, $res->status, $res->headerMap(), $body)) {
                $loop->channel()->answer($this->id, $res, $body);
            }
            $this->started = $this->ended = true;
            return;
        }
        $headers = $res->wireHeaders();
        if (is_string($body)) {
            if ($res->header('content-length') === null) {
                $headers[] = 'Content-Length';
                $headers[] = (string) strlen($body);
            }
            $loop->channel()->response($this->id, $res->status, $headers, '', 0);
            $this->started = true;
            $this->sendBody($body);
            $this->end();
            return;
        }
        if (!is_iterable($body) && !is_resource($body) && !$body instanceof \Closure) {
            throw new \UnexpectedValueException(sprintf('response body is %s: want a string, an iterable of strings, a stream resource or a Closure that writes', get_debug_type($body)));
        }
        // Streamed: the head goes out now, each piece as it comes.
        $loop->channel()->response($this->id, $res->status, $headers, '', 0);
        $loop->flush();
        $this->started = true;
        if ($body instanceof \Closure) {
            // A writer: each piece it writes goes out at once.
            $seq = $this->seq;
            $body(function (string $piece) use ($seq): void {
                if ($this->ended || $this->seq !== $seq) {
                    throw new \LogicException('a response body writer was called after its response ended: write from within the body Closure only');
                }
                if ($piece !== '' && !$this->cancelled) {
                    $this->sendBody($piece, true);
                }
            });
        } elseif (is_resource($body)) {
            try {
                while (!$this->cancelled && !feof($body)) {
                    $piece = fread($body, Frame::MAX_CHUNK);
                    if ($piece === false) {
                        throw new \RuntimeException('reading the response body stream failed');
                    }
                    $this->sendBody($piece, true);
                }
            } finally {
                fclose($body);
            }
        } else {
            foreach ($body as $piece) {
                $this->sendBody((string) $piece, true);
                if ($this->cancelled) {
                    break; // the client is gone: stop producing
                }
            }
        }
        $this->end();
    }

    /**
     * Points PHP's session module at this request's session cookie (or at
     * none): PHP remembers the last session id for the life of the
     * process, so without this a client with no cookie would resume the
     * previous client's session.
     */
    private function sessionFor(Request $req): void
    {
        $cookie = $req->cookieHeader();
        if ($cookie === null && session_id() === '') {
            return; // no session to resume, none to forget
        }
        if (session_status() !== PHP_SESSION_NONE || !ini_get('session.use_cookies') || headers_sent()) {
            return;
        }
        $id = $cookie !== null ? ($req->cookies()[session_name()] ?? '') : '';
        if (!is_string($id)) {
            $id = '';
        }
        if (session_id() !== $id) {
            session_id($id);
        }
    }

    /**
     * A handler that started a PHP session gets its cookie sent, as PHP
     * does under php-fpm (header() does nothing in the CLI), unless the
     * client sent that id already.
     */
    private function sendSessionCookie(Response $res): void
    {
        $name = session_name();
        $id = session_id();
        if ($id === '' || ($_COOKIE[$name] ?? null) === $id || !ini_get('session.use_cookies')) {
            return;
        }
        $p = session_get_cookie_params();
        $res->setCookie($name, $id, [
            'expires' => $p['lifetime'] > 0 ? time() + $p['lifetime'] : 0,
            'path' => $p['path'], 'domain' => $p['domain'], 'secure' => $p['secure'],
            'httponly' => $p['httponly'], 'samesite' => $p['samesite'],
        ]);
    }

    /**
     * Sends body bytes in frames of at most 64 KiB, each once the window has
     * room for it (the master credits bytes as the client takes them).
     */
    private function sendBody(string $data, bool $flush = false): void
    {
        $loop = Loop::get();
        $id = $this->id;
        for ($off = 0, $n = strlen($data); $off < $n && !$this->cancelled; $off += Frame::MAX_CHUNK) {
            while ($this->unacked >= Frame::WINDOW && !$this->cancelled) {
                $loop->flush();
                [$type, $flags, , $p] = $loop->await(static fn (int $t, int $f, int $i) => $i === $id && ($t === Frame::WINDOW_CREDIT || $t === Frame::CANCEL));
                $this->credit($type, $flags, $p);
            }
            $piece = $off === 0 && $n <= Frame::MAX_CHUNK ? $data : substr($data, $off, Frame::MAX_CHUNK);
            $loop->write(Frame::RESPONSE_BODY, $id, $piece);
            $this->unacked += strlen($piece);
        }
        if ($flush) {
            $loop->flush();
            // Between pieces of a stream, take the credits and a cancel that
            // arrived, without waiting.
            while (($f = $loop->await(static fn (int $t, int $fl, int $i) => $i === $id && ($t === Frame::WINDOW_CREDIT || $t === Frame::CANCEL), microtime(true))) !== null) {
                $this->credit($f[0], $f[1], $f[3]);
            }
        }
    }

    private function credit(int $type, int $flags, string $payload): void
    {
        if ($type === Frame::WINDOW_CREDIT && strlen($payload) === 4) {
            $this->unacked = max(0, $this->unacked - Codec::decodeWindow($payload));
        } elseif ($type === Frame::CANCEL && ($flags & Frame::FLAG_END) !== 0) {
            $this->cancelled = true; // the connection is closed: nothing more will be credited
        }
    }

    private function end(): void
    {
        Loop::get()->write(Frame::RESPONSE_BODY, $this->id, '', Frame::FLAG_END);
        $this->ended = true;
    }

    /** Answers the request in flight after a failure: 500, or a cut response once it had started. */
    private function fail(): void
    {
        $loop = Loop::get();
        if ($this->ended) {
            return; // answered in full already (a failure after it, in an afterResponse callback)
        }
        $this->ended = true;
        if ($this->started) {
            $loop->write(Frame::RESPONSE_BODY, $this->id, '', Frame::FLAG_END | Frame::FLAG_ABORT);
            return;
        }
        $this->started = true;
        $loop->channel()->response($this->id, 500, ['Content-Type', 'text/plain; charset=utf-8'], "Internal Server Error\n");
    }

    public function abort(string $why): void
    {
        if ($this->id !== null) {
            $this->fail();
        }
    }

    /** Sets PHP's request globals, as php-fpm would, for code that reads them. */
    private function installGlobals(Request $req): void
    {
        $s = $req->serverParams();
        // drover's PHP extension sets the request's keys in place and puts
        // back the process's after it (server_leave, in reset()); without
        // it, array_replace copies the process's keys and sets the
        // request's: one C call, a third cheaper than $s + $base here.
        if (!($this->nativeServer = $this->native && \Drover\Native\server_enter($s))) {
            $_SERVER = array_replace($this->baseServer ??= $_SERVER, $s);
        }
        $_GET = $s['QUERY_STRING'] === '' ? [] : $req->query();
        $_COOKIE = isset($s['HTTP_COOKIE']) ? $req->cookies() : [];
        $_POST = $_FILES = [];
        if ($req->method === 'POST' && $req->body !== '') {
            $ct = $req->contentType();
            if ($ct === 'application/x-www-form-urlencoded' || $ct === 'multipart/form-data') {
                $_POST = (array) $req->parsedBody();
                $_FILES = \Drover\Http\BodyParser::legacyFiles($req->files());
            }
        }
        $_REQUEST = $_POST === [] ? $_GET : $_POST + $_GET;
    }

    /** Resets what must not leak into the next request. */
    private function reset(Request $req): void
    {
        $req->cleanup();
        if ($this->native) {
            // The same, in one call of drover's PHP extension; the session
            // is closed first (with the request's globals still set).
            if ($this->sessions && session_status() === PHP_SESSION_ACTIVE) {
                session_write_close();
            }
            if ($this->globals && !$this->nativeServer) {
                $_SERVER = $this->baseServer ?? $_SERVER; // set in PHP (installGlobals)
            }
            $this->nativeServer = false;
            if (\Drover\Native\reset($this->globals)) {
                header_remove();
                http_response_code(200);
            }
            return;
        }
        if ($this->globals) {
            $_GET = $_POST = $_COOKIE = $_FILES = $_REQUEST = [];
            $_SERVER = $this->baseServer ?? $_SERVER;
        }
        if ($this->sessions && session_status() === PHP_SESSION_ACTIVE) {
            session_write_close();
        }
        unset($_SESSION);
        if (!headers_sent()) {
            header_remove();
            http_response_code(200);
        }
    }
}
