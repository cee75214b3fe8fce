<?php

declare(strict_types=1);

namespace Drover\Tests\Symfony;

use Drover\Http\Request;
use Drover\Symfony\Runner;
use Drover\Tests\Symfony\Fixtures\Counter;
use Drover\Tests\Symfony\Fixtures\QuietLogger;
use Drover\Tests\Symfony\Fixtures\TerminateProbe;
use Drover\Tests\Symfony\Fixtures\TestKernel;
use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/SymfonyPackages.php';

final class RunnerTest extends TestCase
{
    private static string $dir;
    private static TestKernel $kernel;
    /** @var list<\Closure> what the runner handed to afterResponse */
    private array $after = [];

    public static function setUpBeforeClass(): void
    {
        SymfonyPackages::load();
        require_once '/usr/share/php/Psr/Log/autoload.php';
        require_once __DIR__ . '/Fixtures/TestKernel.php';
        self::$dir = sys_get_temp_dir() . '/drover-runner-' . getmypid();
        self::$kernel = new TestKernel(self::$dir);
        self::$kernel->boot();
    }

    public static function tearDownAfterClass(): void
    {
        (new \Symfony\Component\Filesystem\Filesystem())->remove(self::$dir);
    }

    private function runner(): Runner
    {
        return new Runner(self::$kernel, function (\Closure $fn): void {
            $this->after[] = $fn;
        });
    }

    private function afterResponse(): void
    {
        foreach ($this->after as $fn) {
            $fn();
        }
        $this->after = [];
    }

    private static function get(string $target): Request
    {
        return new Request('GET', $target, 'HTTP/1.1', ['Host', 'app.example']);
    }

    public function testTerminateAndTheResetRunAfterTheResponse(): void
    {
        $runner = $this->runner();
        $counter = self::$kernel->getContainer()->get(Counter::class);
        TerminateProbe::$terminated = [];

        $res = $runner->handle(self::get('/count'));
        self::assertSame([200, '1'], [$res->status, $res->body]);
        self::assertSame([], TerminateProbe::$terminated, 'kernel.terminate waits for the response to leave');
        self::assertSame(1, $counter->n);
        self::assertCount(1, $this->after);

        $this->afterResponse();
        self::assertSame(['/count 200'], TerminateProbe::$terminated);
        self::assertSame(0, $counter->n, 'services_resetter ran between the requests, not at the start of the next');

        $res = $runner->handle(self::get('/count'));
        self::assertSame('1', $res->body, 'the next request starts from a reset counter');
        $this->afterResponse();
        self::assertSame($counter, self::$kernel->getContainer()->get(Counter::class), 'the same container: the kernel booted once');
    }

    public function testAPHPErrorTheKernelLetsThroughGetsTheAppsErrorPage(): void
    {
        $runner = $this->runner();
        TerminateProbe::$terminated = [];
        QuietLogger::$lines = [];
        $res = $runner->handle(self::get('/error'));
        self::assertSame(500, $res->status);
        self::assertStringContainsString('The server returned a "500 Internal Server Error".', $res->body);
        self::assertStringContainsString('Uncaught PHP Exception TypeError', implode("\n", QuietLogger::$lines));
        $this->afterResponse();
        self::assertSame(['/error 500'], TerminateProbe::$terminated);
        // The kernel is sound after it: the next request is served.
        self::assertSame(200, $runner->handle(self::get('/count'))->status);
        $this->afterResponse();
    }

    public function testANotFoundIsTheKernels404(): void
    {
        $res = $this->runner()->handle(self::get('/nope'));
        self::assertSame(404, $res->status);
        $this->afterResponse();
    }
}
