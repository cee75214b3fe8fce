<?php

declare(strict_types=1);

namespace Drover\Runtime;

use Drover\TaskError;

/**
 * The worker's event loop: says hello, reads frames from the master one at a
 * time and hands them to the role's handler, runs timers between events,
 * routes task results and messages, and leaves the way the protocol says
 * (Stop: finish, exit 0; master gone: exit 1).
 *
 * A PHP worker is sequential: its hello declares one event in flight, so the
 * master never sends a second request before the first is answered. While a
 * handler waits for something (a task's result, flow-control credit, the
 * rest of a request body), frames that are not for it wait in a queue and
 * are handled after the event.
 *
 * It also keeps the process healthy between requests: PHP warnings and
 * anything the handler prints go to the log; a fatal error answers the event
 * in flight before the process dies; with worker.max_memory set, the worker
 * asks to be replaced before its memory passes the limit.
 *
 * @internal Use the public classes: Drover\Http\Worker, Drover\Stream\Worker,
 * Drover\Task\Worker, Drover\Timer, Drover\Task, Drover\Message, Drover\Server.
 */
final class Loop
{
    private static ?Loop $instance = null;

    public readonly string $role;
    public readonly int $workerId;
    public readonly int $workerNum;
    public readonly int $taskWorkerNum;

    private Channel $channel;
    /**
     * The channel is a NativeChannel: the loop's per-event read and flush
     * call drover's PHP extension directly (a PHP call less each, which
     * plain PHP without the JIT pays for on every request).
     */
    private bool $native = false;
    private Handler $handler;
    /** @var list<array{int, int, int, string}> frames received while a handler waited, handled next */
    private array $queue = [];
    private bool $serving = false;
    private bool $stopping = false;
    private bool $exiting = false;
    private ?string $reserve = null;

    /** @var array<int, array{float, ?float, \Closure}> timer id => [due, interval, callback] */
    private array $timers = [];
    private int $nextTimer = 1;
    private float $nextDue = INF;

    /** @var array<int, \Closure> task id => callback for Task::async */
    private array $taskCallbacks = [];
    private int $nextTask = 1;
    /** @var ?\Closure(int, string): void */
    private ?\Closure $onMessage = null;

    /** Bytes of flushed output kept per capture for the log. */
    private const FLUSHED_MAX = 64 << 10;
    /** @var array<int, string> output an event flushed out of its capture buffer, by the buffer's level */
    private array $flushed = [];
    /** @var array<int, \Closure> the capture buffers' handlers, by level */
    private array $captureHandlers = [];
    /**
     * The output buffering level with the capture buffer that stays open
     * from one event to the next as long as nothing is printed into it
     * (opening and closing one per request costs more than the rest of a
     * small request's bookkeeping); -1 when there is none.
     */
    private int $kept = -1;
    /** The kept buffer is an event's capture now (a nested capture opens its own). */
    private bool $keptBusy = false;

    private int $memoryLimit = 0;
    private int $events = 0;
    private int $rssAnchor = 0;
    private int $usageAnchor = 0;
    private int $lastUsage = 0;
    private int $growth = 0;
    private bool $retired = false;

    private function __construct()
    {
        $this->role = (string) getenv('DROVER_ROLE');
        $this->workerId = (int) getenv('DROVER_WORKER_ID');
        $this->workerNum = (int) (getenv('DROVER_WORKERS') ?: ($this->role === 'worker' ? getenv('DROVER_WORKER_NUM') : 0));
        $this->taskWorkerNum = (int) (getenv('DROVER_TASK_WORKERS') ?: ($this->role === 'task_worker' ? getenv('DROVER_WORKER_NUM') : 0));
        $this->memoryLimit = (int) getenv('DROVER_MAX_MEMORY');
    }

    /** The running loop; throws when the code does not run inside a drover worker. */
    public static function get(): self
    {
        if (self::$instance === null && ((string) getenv('DROVER_ROLE') !== '' || (PHP_SAPI !== 'cli' && PHP_SAPI !== 'phpdbg'))) {
            // Set-up before serve() (timers, the message callback) is kept
            // for the loop serve() starts. Under php-fpm and the like it is
            // kept too and never runs, so that one script serves both.
            self::$instance = new self();
        }
        return self::$instance ?? throw new \LogicException(
            'this process is not a drover worker (DROVER_ROLE is not set): drover starts the script (worker.cmd) and ' .
            'gives it its channel; timers, tasks and messages work only there'
        );
    }

    public static function running(): bool
    {
        return self::$instance?->serving ?? false;
    }

    /**
     * Runs a worker of $handler's role until drover stops it. Never returns.
     */
    public static function run(Handler $handler): never
    {
        if (self::$instance?->serving) {
            throw new \LogicException('a drover worker already runs in this process: call serve() once');
        }
        foreach (['msgpack' => 'php-msgpack', 'sockets' => 'php-cli'] as $ext => $package) {
            if (!extension_loaded($ext)) {
                fwrite(STDERR, "the drover PHP SDK needs PHP's $ext extension, which is not loaded: apt-get install $package (or enable it in php.ini)\n");
                Boot::exit(78);
            }
        }
        $loop = self::$instance ??= new self();
        $loop->serving = true;
        $loop->handler = $handler;
        $loop->channel = Channel::open();
        $loop->native = $loop->channel instanceof NativeChannel;
        if ($loop->role !== $handler->role()) {
            $want = $handler->role() === 'task_worker' ? 'task_worker.cmd' : 'worker.cmd';
            fwrite(STDERR, sprintf("this program serves as a %s, but drover started it as a %s: list it under %s in the config\n",
                $handler->role(), $loop->role, $want));
            Boot::exit(78);
        }
        $loop->installErrorHandling();
        if ($loop->role === 'worker' && headers_sent($file, $line)) {
            Log::line(sprintf('output before serve() (at %s:%d) went to stdout: PHP counts the response headers as sent from then on, '
                . 'so session_start() and session_id() fail in every request of this worker; remove that output (echo, print, text outside <?php)', $file, $line));
        }
        $loop->channel->write(Frame::HELLO, 0, Codec::encodeHello([
            'version' => Frame::VERSION,
            'pid' => getmypid(),
            'concurrency' => 1,
            'role' => $loop->role,
            'sdk' => 'php',
            'flow' => true,
            // One request in flight, and one more may wait in the channel
            // while every worker is busy, so that the worker never sleeps
            // between two requests under load.
            'prefetch' => 1,
            // Requests as one map of $_SERVER's keys (docs/protocol.md,
            // "The CGI layout"): decoded in one call, instead of the
            // array built here key by key for every request.
            'cgi' => $loop->role === 'worker',
        ]));
        $loop->channel->flush();
        $loop->usageAnchor = $loop->lastUsage = memory_get_usage();
        $loop->rssAnchor = self::rss();
        if ($loop->memoryLimit > 0 && $loop->rssAnchor >= $loop->memoryLimit) {
            // A successor would start over the limit too: asking for one
            // after every request would only churn workers.
            Log::line(sprintf('max_memory %.1fMiB is below this worker\'s RSS right after start (%.1fMiB): raise it; '
                . 'the worker does not retire itself on memory (drover still replaces it once a second)',
                $loop->memoryLimit / 1048576, $loop->rssAnchor / 1048576));
            $loop->memoryLimit = 0;
        }
        $loop->serve();
    }

    private function serve(): never
    {
        while (true) {
            if ($this->queue) {
                $f = array_shift($this->queue);
            } else {
                try {
                    $timeout = $this->timers ? max(0.0, $this->nextDue - microtime(true)) : null;
                    $f = $this->native ? \Drover\Native\read($timeout) : $this->channel->read($timeout);
                    if ($f === false) {
                        $this->channel->gone();
                    }
                } catch (ProtocolError $e) {
                    Log::line("the master's channel carries something that is not a frame: {$e->getMessage()}; exiting (drover starts a new worker)");
                    $this->exitNow(1);
                }
            }
            if ($f !== null) {
                try {
                    $this->dispatch($f);
                } catch (ProtocolError $e) {
                    Log::line(sprintf('cannot read a %s frame from the master: %s; exiting (drover starts a new worker)', Frame::name($f[0]), $e->getMessage()));
                    $this->exitNow(1);
                }
            }
            if ($this->timers && microtime(true) >= $this->nextDue) {
                $this->runTimers();
            }
            // Returns at once when nothing is queued.
            if (!$this->native) {
                $this->channel->flush();
            } elseif (!\Drover\Native\flush()) {
                $this->channel->gone();
            }
            if ($this->stopping && !$this->queue) {
                // Every event the master sent came before its Stop.
                $this->exitNow(0);
            }
        }
    }

    /** @param array{int, int, int, string} $f */
    private function dispatch(array $f): void
    {
        [$type, $flags, $id, $payload] = $f;
        switch ($type) {
            case Frame::STOP:
                $this->stopping = true;
                return;
            case Frame::TASK_RESULT:
                if (isset($this->taskCallbacks[$id])) {
                    $fn = $this->taskCallbacks[$id];
                    unset($this->taskCallbacks[$id]);
                    $result = ($flags & Frame::FLAG_ABORT) !== 0 ? new TaskError($payload) : $payload;
                    $this->callback("task $id callback", static fn () => $fn($result, $id));
                }
                return;
            case Frame::MESSAGE:
                if ($this->onMessage !== null) {
                    $fn = $this->onMessage;
                    $this->callback("message from worker $id", static fn () => $fn($id, $payload));
                }
                return;
            case Frame::WINDOW_CREDIT:
            case Frame::CANCEL:
                return; // for a request that is over
        }
        $this->handler->frame($type, $flags, $id, $payload);
        $this->events++;
        if ($this->memoryLimit > 0 && !$this->retired) {
            $this->checkMemory();
        }
    }

    /**
     * Reads frames until $match accepts one, which it returns; the others
     * wait in the queue (Stop is noted). With a deadline (microtime) it
     * returns null once it passed and nothing more is readable.
     *
     * @param callable(int, int, int, string): bool $match
     * @return array{int, int, int, string}|null
     */
    public function await(callable $match, ?float $deadline = null): ?array
    {
        foreach ($this->queue as $i => $f) {
            if ($match(...$f)) {
                array_splice($this->queue, $i, 1);
                return $f;
            }
        }
        if ($this->channel->pending()) {
            $this->channel->flush();
        }
        while (true) {
            // A deadline that has passed still takes what is readable now:
            // await($match, microtime(true)) polls without blocking.
            $timeout = $deadline === null ? null : max(0.0, $deadline - microtime(true));
            $f = $this->channel->read($timeout);
            if ($f === null) {
                if (microtime(true) >= $deadline) {
                    return null;
                }
                continue;
            }
            if ($match(...$f)) {
                return $f;
            }
            if ($f[0] === Frame::STOP) {
                $this->stopping = true;
            } elseif ($f[0] !== Frame::WINDOW_CREDIT) {
                $this->queue[] = $f;
            }
        }
    }

    /**
     * Whether the client of request $id is already gone (a Cancel with
     * FlagEnd for it was received): a request sent ahead (prefetch) can
     * then be skipped instead of run for nobody. Costs no system call.
     */
    public function cancelledAhead(int $id): bool
    {
        foreach ($this->queue as [$type, $flags, $fid]) {
            if ($type === Frame::CANCEL && $fid === $id && ($flags & Frame::FLAG_END) !== 0) {
                return true;
            }
        }
        return $this->channel->hasCancel($id);
    }

    /** The channel to the master, for a handler's writes on its per-request path. */
    public function channel(): Channel
    {
        return $this->channel;
    }

    public function write(int $type, int $id, string $payload = '', int $flags = 0): void
    {
        $this->channel->write($type, $id, $payload, $flags);
    }

    public function flush(): void
    {
        $this->channel->flush();
    }

    // ---- after each event: memory ------------------------------------------

    /**
     * Asks to be replaced (Retire frame) once the next event would likely
     * take the process past worker.max_memory: RSS plus twice the largest
     * growth one event caused lately. RSS is estimated from PHP's own heap usage
     * between reads of /proc/self/statm, which are re-anchored every 256
     * events and whenever the estimate nears the limit.
     */
    private function checkMemory(): void
    {
        $usage = memory_get_usage();
        $this->growth = max((int) ($this->growth * 0.9), $usage - $this->lastUsage, 0);
        $this->lastUsage = $usage;
        $estimate = $this->rssAnchor + ($usage - $this->usageAnchor);
        if ($estimate + 3 * $this->growth < $this->memoryLimit && $this->events % 256 !== 0) {
            return;
        }
        $this->rssAnchor = self::rss();
        $this->usageAnchor = $usage;
        // Twice the growth: RSS grows by more than PHP's heap does (pages,
        // the allocator's chunks), and the next request may leak a little more.
        if ($this->rssAnchor + 2 * $this->growth < $this->memoryLimit) {
            return;
        }
        $this->retired = true;
        $reason = sprintf('RSS %.1fMiB + %.1fMiB per request would pass max_memory %.1fMiB after %d requests',
            $this->rssAnchor / 1048576, $this->growth / 1048576, $this->memoryLimit / 1048576, $this->events);
        Log::line("$reason: asking drover for a successor; this worker takes no new requests");
        $this->channel->write(Frame::RETIRE, 0, $reason);
    }

    /** This process's resident set size in bytes (0 if unknown). */
    /**
     * The resident set without resident shared memory (RssShmem): the
     * shared tables (Drover\Table) are the master's memory, allocated
     * once, whichever worker touches them, and drover's manager leaves
     * them out of max_memory too.
     */
    public static function rss(): int
    {
        $status = @file_get_contents('/proc/self/status');
        if ($status === false || !preg_match('/^VmRSS:\s+(\d+)/m', $status, $rss)) {
            return 0;
        }
        $shared = preg_match('/^RssShmem:\s+(\d+)/m', $status, $m) ? (int) $m[1] : 0;
        return max(0, (int) $rss[1] - $shared) * 1024;
    }

    // ---- timers --------------------------------------------------------------

    public function addTimer(int $ms, ?int $interval, \Closure $fn): int
    {
        if ($ms < 1) {
            throw new \InvalidArgumentException("timer interval $ms ms: want at least 1 ms");
        }
        $id = $this->nextTimer++;
        $due = microtime(true) + $ms / 1000;
        $this->timers[$id] = [$due, $interval === null ? null : $interval / 1000, $fn];
        $this->nextDue = min($this->nextDue, $due);
        return $id;
    }

    public function clearTimer(int $id): bool
    {
        if (!isset($this->timers[$id])) {
            return false;
        }
        unset($this->timers[$id]);
        $this->recomputeDue();
        return true;
    }

    private function recomputeDue(): void
    {
        $this->nextDue = INF;
        foreach ($this->timers as [$due]) {
            $this->nextDue = min($this->nextDue, $due);
        }
    }

    private function runTimers(): void
    {
        $now = microtime(true);
        foreach ($this->timers as $id => [$due, $interval, $fn]) {
            if ($due > $now || !isset($this->timers[$id])) {
                continue;
            }
            if ($interval === null) {
                unset($this->timers[$id]);
            } else {
                // The next run is one interval after this one was due, or
                // after now if the loop was busy for longer than that.
                $this->timers[$id][0] = max($due + $interval, $now);
            }
            $this->callback("timer $id", static fn () => $fn($id));
        }
        $this->recomputeDue();
    }

    // ---- tasks and messages --------------------------------------------------

    public function task(string $data, ?\Closure $onFinish): int
    {
        if ($this->role !== 'worker') {
            throw new \LogicException('only workers send tasks: a task worker cannot (return the work as its result, or message a worker)');
        }
        if (!$this->serving) {
            throw new \LogicException('tasks are sent once the worker serves: send them from a handler or a timer, after serve()');
        }
        $id = $this->nextTask++;
        if ($onFinish !== null) {
            $this->taskCallbacks[$id] = $onFinish;
        }
        $this->channel->write(Frame::TASK, $id, $data);
        return $id;
    }

    /**
     * Sends the tasks and waits for their results until the deadline.
     *
     * @param array<array-key, string> $tasks
     * @return array<array-key, string|TaskError> in the order of $tasks
     */
    public function taskWaitMulti(array $tasks, float $timeout): array
    {
        $ids = [];
        foreach ($tasks as $key => $data) {
            if (!is_string($data)) {
                throw new \TypeError(sprintf('task %s is %s: tasks are strings (encode it, e.g. json_encode)', $key, get_debug_type($data)));
            }
            $id = $this->task($data, null);
            $ids[$id] = $key;
        }
        $results = [];
        $deadline = microtime(true) + $timeout;
        $left = count($ids);
        while ($left > 0) {
            $f = $this->await(fn (int $type, int $flags, int $id) => $type === Frame::TASK_RESULT && isset($ids[$id]) && !array_key_exists($ids[$id], $results), $deadline);
            if ($f === null) {
                break;
            }
            [, $flags, $id, $payload] = $f;
            $results[$ids[$id]] = ($flags & Frame::FLAG_ABORT) !== 0 ? new TaskError($payload) : $payload;
            $left--;
        }
        $out = [];
        foreach ($ids as $key) {
            $out[$key] = $results[$key] ?? new TaskError(sprintf('no result within %.3gs', $timeout), true);
        }
        return $out;
    }

    public function sendMessage(int $workerId, string $data): void
    {
        if (!$this->serving) {
            throw new \LogicException('messages are sent once the worker serves: send them from a handler or a timer, after serve()');
        }
        $this->channel->write(Frame::MESSAGE, $workerId, $data);
        if ($this->handler->current() === '') {
            $this->channel->flush();
        }
    }

    public function onMessage(?\Closure $fn): void
    {
        $this->onMessage = $fn;
    }

    // ---- errors, output, exit --------------------------------------------------

    /**
     * Runs a callback (a timer, a task result, a message, a stream event),
     * logging what it throws or prints; the worker carries on.
     */
    public function callback(string $what, \Closure $fn): void
    {
        $level = $this->startCapture();
        try {
            $fn();
        } catch (\Throwable $e) {
            Log::line(sprintf('uncaught %s in %s; the worker carries on', Log::describe($e), $what));
        } finally {
            $this->endCapture($level, $what);
        }
    }

    /**
     * Opens the output buffer that captures what an event's code prints;
     * returns the level to give endCapture(). What the code flushes out of
     * it (ob_flush(), ob_end_flush()) is kept for the log too, up to
     * FLUSHED_MAX bytes: it never reaches the worker's stdout, where PHP
     * would count the headers as sent for the rest of the process, after
     * which session_start() and session_id() fail in every request.
     */
    public function startCapture(): int
    {
        $level = ob_get_level();
        if ($level === $this->kept && !$this->keptBusy) {
            $this->keptBusy = true;
            return $level - 1;
        }
        if (!$this->keptBusy) {
            $this->kept = $level + 1;
            $this->keptBusy = true;
        }
        ob_start($this->captureHandlers[$level] ??= function (string $buffer, int $phase) use ($level): string {
            if ($buffer !== '' && ($phase & PHP_OUTPUT_HANDLER_CLEAN) === 0) {
                $kept = $this->flushed[$level] ?? '';
                if (strlen($kept) < self::FLUSHED_MAX) {
                    $this->flushed[$level] = $kept . substr($buffer, 0, self::FLUSHED_MAX - strlen($kept));
                }
            }
            return '';
        });
        return $level;
    }

    /**
     * Closes the output buffers opened since $level and logs what they held:
     * output of a handler never reaches a client or the channel.
     */
    public function endCapture(int $level, string $what): void
    {
        if ($level + 1 === $this->kept) {
            $this->keptBusy = false;
            if (ob_get_level() === $this->kept && ob_get_length() === 0 && !$this->flushed) {
                return; // nothing printed: the buffer stays for the next event
            }
            $this->kept = -1; // closed below: the next event opens another
        }
        $out = '';
        while (ob_get_level() > $level) {
            $piece = ob_get_clean();
            if ($piece === false) {
                break; // a buffer that cannot be removed (PHP_OUTPUT_HANDLER_REMOVABLE off)
            }
            $out = $piece . $out;
        }
        if ($this->flushed) {
            $before = '';
            foreach ($this->flushed as $l => $f) {
                if ($l >= $level) {
                    $before .= $f;
                    unset($this->flushed[$l]);
                }
            }
            $out = $before . $out;
        }
        if ($out === '') {
            return;
        }
        $lines = explode("\n", rtrim($out, "\n"));
        $more = count($lines) > 20 ? sprintf(' (and %d more lines)', count($lines) - 20) : '';
        foreach (array_slice($lines, 0, 20) as $line) {
            Log::line(sprintf('output of %s (not sent to the client): %s', $what, strlen($line) > 2000 ? substr($line, 0, 2000) . '…' : $line));
        }
        if ($more !== '') {
            Log::line("output of $what$more");
        }
    }

    private function installErrorHandling(): void
    {
        // Warnings and notices are logged by the handler below; fatal errors
        // by shutdown(). PHP's own display would go to stdout mid-request.
        ini_set('display_errors', '0');
        ini_set('log_errors', '0');
        $this->reserve = str_repeat("\0", 256 << 10);
        set_error_handler(function (int $errno, string $message, string $file, int $line): bool {
            if ((error_reporting() & $errno) === 0) {
                return false;
            }
            if ($errno === E_USER_ERROR) {
                return false; // fatal, as PHP makes it: shutdown() reports it
            }
            $what = $this->handler->current();
            Log::line(sprintf('PHP %s: %s in %s:%d%s', self::errorName($errno), $message, $file, $line, $what !== '' ? " (while handling $what)" : ''));
            return true;
        });
        register_shutdown_function($this->shutdown(...));
    }

    private static function errorName(int $errno): string
    {
        return match ($errno) {
            E_WARNING, E_USER_WARNING, E_CORE_WARNING, E_COMPILE_WARNING => 'Warning',
            E_NOTICE, E_USER_NOTICE => 'Notice',
            E_DEPRECATED, E_USER_DEPRECATED => 'Deprecated',
            E_RECOVERABLE_ERROR => 'Recoverable error',
            default => 'Error',
        };
    }

    /**
     * Runs when the process ends. After a fatal error (or an exit() in a
     * handler) it logs why with file:line and answers the event in flight,
     * so that no client waits for a dead worker; drover starts a successor.
     */
    private function shutdown(): void
    {
        $this->reserve = null;
        if ($this->exiting) {
            return;
        }
        $what = $this->handler->current();
        $this->endCapture(0, $what !== '' ? $what : 'the worker');
        $err = error_get_last();
        $fatal = $err !== null && ($err['type'] & (E_ERROR | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR | E_PARSE | E_RECOVERABLE_ERROR)) !== 0;
        $during = $what !== '' ? " while handling $what" : '';
        if ($fatal) {
            Log::line(sprintf('PHP Fatal error: %s in %s:%d%s; the worker exits and drover starts a new one',
                $err['message'], $err['file'], $err['line'], $during));
        } else {
            Log::line("the handler called exit()$during; the worker exits and drover starts a new one (return a response instead of exiting)");
        }
        try {
            if ($this->serving) {
                // Nothing new for a dying worker: say so before the answer.
                $this->channel->write(Frame::RETIRE, 0, $fatal ? 'PHP fatal error' : 'exit() called', Frame::FLAG_END);
            }
            if ($what !== '') {
                $this->handler->abort($fatal ? 'PHP fatal error' : 'exit() in the handler');
            }
            if ($this->serving) {
                $this->handBack();
            }
            $this->channel->flush();
        } catch (\Throwable) {
            // The master is gone: nothing to answer.
        }
    }

    /**
     * Hands the requests the master sent ahead (prefetch), which this dying
     * worker will never start, back to the master for another worker,
     * instead of leaving their clients a 502.
     */
    private function handBack(): void
    {
        $frames = $this->queue;
        $this->queue = [];
        while (($f = $this->channel->read(0.0)) !== null) {
            $frames[] = $f;
        }
        foreach ($frames as [$type, , $id]) {
            if ($type === Frame::REQUEST) {
                $this->channel->write(Frame::RESPONSE, $id, '', Frame::FLAG_END | Frame::FLAG_RETRY);
            }
        }
    }

    /** Leaves the process now with $code, without the fatal-error report. */
    public static function exitNow(int $code): never
    {
        if (self::$instance !== null) {
            self::$instance->exiting = true;
        }
        exit($code);
    }
}
