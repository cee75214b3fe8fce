<?php

namespace App\Service;

use Symfony\Component\EventDispatcher\EventSubscriberInterface;
use Symfony\Component\HttpKernel\Event\TerminateEvent;
use Symfony\Component\HttpKernel\KernelEvents;

// Notes which request kernel.terminate last ran for (GET /state/terminated
// shows it): under drover it runs once the response has left, before the
// worker takes its next request.
class TerminateProbe implements EventSubscriberInterface
{
    public static ?string $last = null;

    public static function getSubscribedEvents(): array
    {
        return [KernelEvents::TERMINATE => 'onTerminate'];
    }

    public function onTerminate(TerminateEvent $event): void
    {
        self::$last = $event->getRequest()->getMethod().' '.$event->getRequest()->getPathInfo().' '.$event->getResponse()->getStatusCode();
    }
}
