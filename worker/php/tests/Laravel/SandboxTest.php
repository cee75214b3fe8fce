<?php

declare(strict_types=1);

namespace Drover\Tests\Laravel;

use Drover\Http\Request;
use Drover\Laravel\Sandbox;
use Drover\Laravel\Worker;
use Drover\Runtime\Log;
use Drover\Tests\Laravel\Fixtures\FixtureProvider;
use PHPUnit\Framework\TestCase;

/**
 * Laravel's bootstrap installs its own error and exception handlers, so
 * each test boots the fixture app in a process of its own.
 *
 * @runTestsInSeparateProcesses
 * @preserveGlobalState disabled
 */
final class SandboxTest extends TestCase
{
    /** @var list<\Closure> what the sandbox handed to afterResponse */
    private array $after = [];
    private string $dir = '';

    /** @var list<string> what the SDK logged */
    private array $logged = [];

    /** @param ?\Closure(string): void $edit changes the fixture app's copy (its directory) before it boots */
    private function sandbox(?\Closure $edit = null): Sandbox
    {
        Log::$sink = function (string $line): void {
            $this->logged[] = $line;
        };
        if (!is_file('/usr/share/php/Illuminate/autoload.php')) {
            throw new \RuntimeException("the Laravel tests need Debian's Laravel 8: apt-get install php-laravel-framework php-sqlite3 (.ci/run does it)");
        }
        require_once '/usr/share/php/Illuminate/autoload.php';
        require_once __DIR__ . '/Fixtures/app/app/FixtureProvider.php';
        // A copy: Laravel writes its caches into the app.
        $this->dir = sys_get_temp_dir() . '/drover-laravel-' . getmypid();
        (new \Illuminate\Filesystem\Filesystem())->copyDirectory(__DIR__ . '/Fixtures/app', $this->dir);
        if ($edit !== null) {
            $edit($this->dir);
        }
        return new Sandbox(Worker::boot($this->dir), function (\Closure $fn): void {
            $this->after[] = $fn;
        });
    }

    protected function tearDown(): void
    {
        if ($this->dir !== '') {
            (new \Illuminate\Filesystem\Filesystem())->deleteDirectory($this->dir);
        }
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
        return new Request('GET', $target, 'HTTP/1.1', ['Host', 'app.example', 'Accept', 'application/json']);
    }

    public function testEachRequestFindsTheApplicationAsBootLeftIt(): void
    {
        $sandbox = $this->sandbox();
        $first = '{"greeting":"Hello","bound":false,"listed":0,"unlisted":0,"level":0}';
        $res = $sandbox->handle(self::get('/state'));
        self::assertSame([200, $first], [$res->status, $res->body]);
        self::assertSame([], FixtureProvider::$terminated, 'terminate() waits for the response to leave');
        $this->afterResponse();
        self::assertSame(['GET /state'], FixtureProvider::$terminated);

        // The config change, the instance, the listed singleton's content
        // and the transaction are gone; the unlisted boot singleton is not.
        $res = $sandbox->handle(self::get('/state'));
        self::assertSame('{"greeting":"Hello","bound":false,"listed":0,"unlisted":1,"level":0}', $res->body);
        $this->afterResponse();
        self::assertSame(['GET /state', 'GET /state'], FixtureProvider::$terminated, 'terminating callbacks do not pile up');
        self::assertSame(0, $sandbox->application()->make('db')->connection()->transactionLevel());
        self::assertSame(array_fill(0, 2, 'the request left 1 transaction(s) open on database connection "sqlite": rolled back (commit or roll back in the request)'), $this->logged);
    }

    public function testAnEmptyAppKeyIsToldAtBoot(): void
    {
        $this->sandbox(static function (string $dir): void {
            $f = "$dir/config/app.php";
            file_put_contents($f, (string) preg_replace("/'key' => .*,/", "'key' => '',", (string) file_get_contents($f)));
        });
        self::assertNotEmpty(preg_grep('/^APP_KEY is empty .*php artisan key:generate/', $this->logged), implode("\n", $this->logged));
    }

    public function testEachRequestGetsAControllerOfItsOwn(): void
    {
        // The matched route keeps the controller it built (and the
        // middleware it gathered): a controller's properties must not
        // carry over to the next request, as they do not under php-fpm.
        $sandbox = $this->sandbox();
        foreach ([1, 2, 3] as $_) {
            $res = $sandbox->handle(self::get('/controller'));
            self::assertSame([200, '{"served":1}'], [$res->status, $res->body]);
            $this->afterResponse();
        }
    }

    public function testAPHPWarningIsLaravelsErrorException(): void
    {
        $sandbox = $this->sandbox();
        $errors = [];
        set_error_handler(static function (int $no, string $msg) use (&$errors): bool {
            $errors[] = $msg;
            return true;
        });
        try {
            $res = $sandbox->handle(self::get('/warn'));
        } finally {
            restore_error_handler();
        }
        self::assertSame(500, $res->status, 'Laravel turns the warning into an exception and a 500, as under php-fpm');
        self::assertSame([], $errors, 'the warning did not reach the handler in place before the request');
        $this->afterResponse();
    }
}
