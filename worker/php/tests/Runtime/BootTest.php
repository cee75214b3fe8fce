<?php

declare(strict_types=1);

namespace Drover\Tests\Runtime;

use PHPUnit\Framework\TestCase;

/**
 * A worker script that runs to its end instead of serving is told what to
 * do about it, in its framework's terms when a framework's front
 * controller ran as under php-fpm.
 */
final class BootTest extends TestCase
{
    /** Runs $code as a worker drover started (DROVER_ROLE set) and returns [exit code, stderr]. */
    private static function spawn(string $code): array
    {
        $autoload = var_export(dirname(__DIR__, 2) . '/autoload.php', true);
        $p = proc_open([PHP_BINARY, '-r', "require $autoload; $code"], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes,
            null, ['DROVER_ROLE' => 'worker', 'PATH' => (string) getenv('PATH')]);
        self::assertIsResource($p);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        return [proc_close($p), $out, $err];
    }

    public function testAPlainScriptIsToldToServe(): void
    {
        [$code, , $err] = self::spawn('');
        self::assertSame(78, $code);
        self::assertStringContainsString('call Drover\Http\Worker::serve()', $err);
    }

    public function testSymfonysFrontControllerIsToldAboutAppRuntime(): void
    {
        $f = '/usr/share/php/Symfony/Component/Runtime/autoload.php';
        self::assertFileExists($f, "Debian's php-symfony-runtime is needed (.ci/run installs it)");
        [$code, $out, $err] = self::spawn("require '$f'; class_exists(Symfony\\Component\\Runtime\\SymfonyRuntime::class); echo '<html>page</html>';");
        self::assertSame(78, $code);
        self::assertSame('<html>page</html>', $out);
        self::assertStringStartsWith("\nthe worker script ended without serving: Symfony's own runtime", $err,
            'on a line of its own after the page, with the fix');
        self::assertStringContainsString("APP_RUNTIME: 'Drover\\Symfony\\Runtime' under worker.env", $err);
    }

    public function testLaravelsFrontControllerIsToldAboutTheWorkerEntry(): void
    {
        $f = '/usr/share/php/Illuminate/autoload.php';
        self::assertFileExists($f, "Debian's php-laravel-framework is needed (.ci/run installs it)");
        [$code, , $err] = self::spawn("require '$f'; class_exists(Illuminate\\Foundation\\Application::class);");
        self::assertSame(78, $code);
        self::assertStringContainsString('laravel-worker.php', $err);
    }
}
