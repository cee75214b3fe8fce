<?php

declare(strict_types=1);

namespace Drover\Tests\Symfony\Fixtures;

use Symfony\Bundle\FrameworkBundle\FrameworkBundle;
use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Component\DependencyInjection\Loader\Configurator\ContainerConfigurator;
use Symfony\Component\EventDispatcher\EventSubscriberInterface;
use Symfony\Component\HttpFoundation\Response;
use Symfony\Component\HttpKernel\Event\TerminateEvent;
use Symfony\Component\HttpKernel\Kernel;
use Symfony\Component\HttpKernel\KernelEvents;
use Symfony\Component\Routing\Loader\Configurator\RoutingConfigurator;
use Symfony\Contracts\Service\ResetInterface;

/** A Symfony app in one class for RunnerTest: its cache lives in $dir. */
final class TestKernel extends Kernel
{
    use MicroKernelTrait;

    public function __construct(private readonly string $dir)
    {
        parent::__construct('prod', false);
    }

    public function registerBundles(): iterable
    {
        yield new FrameworkBundle();
    }

    public function getProjectDir(): string
    {
        return $this->dir;
    }

    protected function configureContainer(ContainerConfigurator $c): void
    {
        $c->extension('framework', ['secret' => 'test', 'http_method_override' => false, 'router' => ['utf8' => true]]);
        $s = $c->services();
        $s->set('logger', QuietLogger::class);
        $s->set(Counter::class)->public()->tag('kernel.reset', ['method' => 'reset']);
        $s->set(TerminateProbe::class)->tag('kernel.event_subscriber');
    }

    protected function configureRoutes(RoutingConfigurator $routes): void
    {
        $routes->add('count', '/count')->controller('kernel::count');
        $routes->add('error', '/error')->controller('kernel::error');
    }

    public function count(): Response
    {
        $counter = $this->getContainer()->get(Counter::class);
        return new Response((string) ++$counter->n);
    }

    public function error(): Response
    {
        return strlen([]); // a TypeError, which HttpKernel 5.4 does not catch
    }
}

/** Counts requests; reset by services_resetter. */
final class Counter implements ResetInterface
{
    public int $n = 0;

    public function reset(): void
    {
        $this->n = 0;
    }
}

/** Notes each kernel.terminate. */
final class TerminateProbe implements EventSubscriberInterface
{
    /** @var list<string> */
    public static array $terminated = [];

    public static function getSubscribedEvents(): array
    {
        return [KernelEvents::TERMINATE => 'onTerminate'];
    }

    public function onTerminate(TerminateEvent $e): void
    {
        self::$terminated[] = $e->getRequest()->getPathInfo() . ' ' . $e->getResponse()->getStatusCode();
    }
}

/** Keeps the kernel's error log lines out of PHPUnit's output. */
final class QuietLogger extends \Psr\Log\AbstractLogger
{
    /** @var list<string> */
    public static array $lines = [];

    public function log($level, $message, array $context = []): void
    {
        self::$lines[] = "[$level] $message";
    }
}
