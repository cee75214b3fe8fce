<?php

declare(strict_types=1);

namespace Drover\Symfony;

use Symfony\Component\HttpKernel\HttpKernelInterface;
use Symfony\Component\Runtime\RunnerInterface;
use Symfony\Component\Runtime\SymfonyRuntime;

/**
 * The Symfony Runtime (symfony/runtime 5.4 and later) for drover: with
 * APP_RUNTIME=Drover\Symfony\Runtime in the worker's environment, an app's
 * unchanged public/index.php runs as a resident drover worker:
 *
 *     # drover.yaml
 *     worker:
 *       cmd: [php, public/index.php]
 *       env: {APP_RUNTIME: 'Drover\Symfony\Runtime'}
 *
 * The front controller's kernel is booted once per worker and serves
 * every request (Drover\Symfony\Runner). Everything else is
 * SymfonyRuntime's: .env files, APP_ENV and APP_DEBUG, the error handler,
 * console commands. Outside drover (php-fpm, `bin/console`, the same
 * APP_RUNTIME set in .env) it is SymfonyRuntime, so one front controller
 * and one .env serve both.
 */
class Runtime extends SymfonyRuntime
{
    public function getRunner(?object $application): RunnerInterface
    {
        if ($application instanceof HttpKernelInterface && Runner::underDrover()) {
            return new Runner($application);
        }
        return parent::getRunner($application);
    }
}
