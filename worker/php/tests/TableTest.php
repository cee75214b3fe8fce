<?php

declare(strict_types=1);

namespace Drover\Tests;

use Drover\Atomic;
use Drover\Runtime\Shm;
use Drover\Table;
use PHPUnit\Framework\TestCase;

/**
 * Drover\Table and Drover\Atomic on a real region, which make test-php
 * provides: phpunit runs under scripts/shmhost with
 *
 *     -table 'cache:1000:value=string(256),hits=int,updated=float'
 *     -table 'small:3:s=string(4)' -table 'big:16384:s=string(1024)'
 *     -atomic requests -atomic flag
 *
 * Processes are pcntl_fork()ed children sharing the mapping, as workers
 * share drover's.
 */
final class TableTest extends TestCase
{
    /** @var list<string> warnings the code under test raised */
    private array $warnings = [];

    protected function setUp(): void
    {
        if (getenv('DROVER_SHM_FD') === false) {
            self::markTestSkipped('no shared memory: run through `make test-php`, which starts phpunit under scripts/shmhost');
        }
        foreach (['cache', 'small', 'big'] as $name) {
            $t = new Table($name);
            foreach ($t as $key => $_) {
                $t->del($key);
            }
        }
        $this->warnings = [];
        set_error_handler(function (int $no, string $msg): bool {
            $this->warnings[] = $msg;
            return true;
        }, E_USER_WARNING);
    }

    protected function tearDown(): void
    {
        restore_error_handler();
    }

    public function testSwooleMethods(): void
    {
        $t = new Table('cache');
        self::assertFalse($t->get('a'));
        self::assertFalse($t->exist('a'));
        self::assertTrue($t->set('a', ['value' => 'hello', 'hits' => 3]));
        self::assertSame(['hits' => 3, 'updated' => 0.0, 'value' => 'hello'], $t->get('a'));
        self::assertSame('hello', $t->get('a', 'value'));
        self::assertTrue($t->exist('a'));
        self::assertTrue($t->exists('a'));
        // A set of some columns leaves the others as they are.
        self::assertTrue($t->set('a', ['updated' => 1.5]));
        self::assertSame(['hits' => 3, 'updated' => 1.5, 'value' => 'hello'], $t->get('a'));
        self::assertSame(5, $t->incr('a', 'hits', 2));
        self::assertSame(4, $t->decr('a', 'hits'));
        self::assertSame(2.0, $t->incr('a', 'updated', 0.5));
        self::assertSame(-7, $t->decr('b', 'hits', 7), 'incr of an absent key inserts it');
        self::assertSame(2, $t->count());
        self::assertSame(2, count($t));
        self::assertTrue($t->del('a'));
        self::assertFalse($t->del('a'));
        self::assertFalse($t->get('a'));
        self::assertSame(1, $t->count());
        self::assertSame(1000, $t->getSize());
        self::assertGreaterThan(1000 * 352, $t->getMemorySize());
        self::assertSame([], $this->warnings);
    }

    public function testSwooleConstructionChecksTheConfig(): void
    {
        $t = new Table('cache');
        self::assertTrue($t->column('value', Table::TYPE_STRING, 256));
        self::assertTrue($t->column('hits', Table::TYPE_INT, 8));
        self::assertTrue($t->create());
        $this->expectException(\LogicException::class);
        $this->expectExceptionMessage('columns are declared in drover.yaml');
        $t->column('value', Table::TYPE_STRING, 64);
    }

    public function testUnknownTableAndColumn(): void
    {
        try {
            new Table('nope');
            self::fail('a table drover.yaml does not declare');
        } catch (\InvalidArgumentException $e) {
            self::assertStringContainsString('declared: big, cache, small', $e->getMessage());
        }
        $this->expectException(\InvalidArgumentException::class);
        (new Table('cache'))->set('a', ['valeu' => 'x']);
    }

    public function testLimitsAnswerFalseWithAWarning(): void
    {
        $t = new Table('small');
        self::assertFalse($t->set('k', ['s' => '12345']));
        self::assertFalse($t->set(str_repeat('k', 64), ['s' => 'x']));
        self::assertFalse($t->set('', ['s' => 'x']));
        self::assertTrue($t->set(str_repeat('k', 63), ['s' => '1234']));
        self::assertTrue($t->set('b', ['s' => 'x']));
        self::assertTrue($t->set('c', ['s' => 'x']));
        self::assertFalse($t->set('d', ['s' => 'x']), 'a 4th row in a table of 3');
        self::assertTrue($t->set('b', ['s' => 'y']), 'a full table updates its rows');
        self::assertTrue($t->del('b'));
        self::assertTrue($t->set('d', ['s' => 'x']));
        self::assertSame('1234', $t->get(str_repeat('k', 63), 's'));
        self::assertCount(4, $this->warnings);
        self::assertStringContainsString('5 bytes for column s, string(4)', $this->warnings[0]);
        self::assertStringContainsString('a key is 1 to 63 bytes, got 64', $this->warnings[1]);
        self::assertStringContainsString('is full (3 rows)', $this->warnings[3]);
    }

    public function testIteration(): void
    {
        $t = new Table('cache');
        $want = [];
        for ($i = 0; $i < 300; $i++) {
            $t->set("k$i", ['hits' => $i]);
            $want["k$i"] = $i;
        }
        $got = [];
        foreach ($t as $key => $row) {
            self::assertArrayNotHasKey($key, $got, "$key seen twice");
            $got[$key] = $row['hits'];
        }
        ksort($got);
        ksort($want);
        self::assertSame($want, $got);
    }

    /** Forked processes incrementing shared rows add up; none reads a row half written. */
    public function testProcessesAddUp(): void
    {
        $t = new Table('cache');
        $requests = new Atomic('requests');
        $requests->set(0);
        $children = [];
        for ($c = 0; $c < 4; $c++) {
            $pid = pcntl_fork();
            if ($pid === 0) {
                $code = 0;
                for ($i = 0; $i < 2000; $i++) {
                    $k = 'k' . ($i * 7 + $c) % 20;
                    $t->incr($k, 'hits');
                    $requests->add();
                    $v = str_repeat(chr(97 + $c), 1 + $i % 50);
                    $t->set($k, ['value' => $v, 'updated' => (float) strlen($v)]);
                    $row = $t->get($k);
                    if ($row === false || strlen($row['value']) !== (int) $row['updated']) {
                        $code = 1;
                    }
                }
                exit($code); // the child's own end: PHPUnit's shutdown stays the parent's
            }
            $children[] = $pid;
        }
        foreach ($children as $pid) {
            pcntl_waitpid($pid, $status);
            self::assertSame(0, pcntl_wexitstatus($status), 'a child read a torn row or failed');
        }
        $sum = 0;
        foreach ($t as $row) {
            $sum += $row['hits'];
        }
        self::assertSame(8000, $sum);
        self::assertSame(8000, $requests->get());
    }

    /**
     * A process killed -9 in the middle of a set (its bucket's lock held,
     * its sequence odd): the next reader takes the lock over, resets the
     * columns the set was writing and keeps the others.
     */
    public function testKilledWriterIsRecovered(): void
    {
        $t = new Table('cache');
        $t->set('a', ['value' => 'old', 'hits' => 7]);
        $shm = Shm::get();
        $info = $shm->tables['cache'];
        $b = $info['buckets'] + (crc32('a') & $info['mask']) * Shm::BUCKET;
        $pipe = [];
        self::assertTrue(socket_create_pair(AF_UNIX, SOCK_STREAM, 0, $pipe));
        $pid = pcntl_fork();
        if ($pid === 0) {
            $shm->forked();
            // What write() does up to the middle of its row writes.
            $shm->cas64($b + Shm::B_LOCK, 0, $shm->me);
            $idx = $shm->u32[($b + Shm::B_HEAD) >> 2];
            $shm->i64[($b + Shm::B_COLS) >> 3] = 1 << $info['cols']['value']['idx'];
            $shm->u32[($b + Shm::B_INTENT) >> 2] = Shm::OP_SET << Shm::OP_SHIFT | $idx;
            $shm->u32[($b + Shm::B_SEQ) >> 2] = $shm->u32[($b + Shm::B_SEQ) >> 2] + 1;
            $r = $info['rows'] + ($idx - 1) * $info['rowSize'] + $info['cols']['value']['off'];
            $shm->u32[$r >> 2] = 9;
            \FFI::memcpy($shm->u8 + ($r + 4), 'half', 4);
            socket_write($pipe[1], 'x');
            sleep(60);
            exit(0);
        }
        socket_close($pipe[1]); // the child's alone: its exit is our end of file
        socket_set_option($pipe[0], SOL_SOCKET, SO_RCVTIMEO, ['sec' => 30, 'usec' => 0]);
        self::assertSame('x', socket_read($pipe[0], 1), 'the child did not take the lock');
        posix_kill($pid, SIGKILL);
        pcntl_waitpid($pid, $status);
        $start = hrtime(true);
        self::assertSame(['hits' => 7, 'updated' => 0.0, 'value' => ''], $t->get('a'));
        self::assertLessThan(2e9, hrtime(true) - $start, 'the reader waited for the dead writer');
        self::assertSame(1, $t->stats()['torn_writes']);
        self::assertSame(8, $t->incr('a', 'hits'));
    }

    public function testAtomicWaitWakeup(): void
    {
        $flag = new Atomic('flag');
        $flag->set(0);
        self::assertFalse($flag->wait(0.01), 'nothing to take');
        $pid = pcntl_fork();
        if ($pid === 0) {
            usleep(50_000);
            (new Atomic('flag'))->wakeup();
            exit(0);
        }
        $start = hrtime(true);
        self::assertTrue($flag->wait(10.0));
        self::assertLessThan(5e9, hrtime(true) - $start);
        self::assertSame(0, $flag->get());
        pcntl_waitpid($pid, $status);
        self::assertTrue($flag->cmpset(0, 1));
        self::assertFalse($flag->cmpset(0, 1));
        self::assertTrue($flag->wait(0.0));
        $requests = new Atomic('requests');
        $requests->set(PHP_INT_MAX);
        self::assertSame(PHP_INT_MIN, $requests->add(), 'wraps around as Go\'s int64');
    }

    /** Table pages a worker touched are not its memory (max_memory): Loop::rss() leaves them out. */
    public function testRssLeavesTheTablesOut(): void
    {
        $big = new Table('big');
        $before = \Drover\Runtime\Loop::rss();
        $v = str_repeat('x', 1024);
        for ($i = 0; $i < $big->getSize(); $i++) {
            $big->set("k$i", ['s' => $v]);
        }
        $after = \Drover\Runtime\Loop::rss();
        self::assertLessThan(8 << 20, $after - $before, sprintf('RSS grew by %.1f MiB writing %.1f MiB of table', ($after - $before) / 1048576, $big->getMemorySize() / 1048576));
    }

    public function testWrapAddIsGos(): void
    {
        self::assertSame(PHP_INT_MIN, Table::wrapAdd(PHP_INT_MAX, 1));
        self::assertSame(PHP_INT_MAX, Table::wrapAdd(PHP_INT_MIN, -1));
        self::assertSame(-2, Table::wrapAdd(PHP_INT_MAX, PHP_INT_MAX));
        self::assertSame(5, Table::wrapAdd(2, 3));
    }
}
