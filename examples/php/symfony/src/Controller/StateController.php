<?php

namespace App\Controller;

use App\Service\CurrentUser;
use App\Service\LastVisitor;
use App\Service\Settings;
use App\Service\TerminateProbe;
use Symfony\Bundle\FrameworkBundle\Controller\AbstractController;
use Symfony\Component\HttpFoundation\JsonResponse;
use Symfony\Component\HttpFoundation\Request;

// What the reset between requests covers, and what it does not
// (docs/php.md, "What is reset between requests"). Each route answers what
// the request found, then leaves state behind for the next one.
class StateController extends AbstractController
{
    /** @var list<string> kept by PHP for the life of the process */
    private static array $seen = [];

    /** @var list<string> grows by ?mb= MiB per request */
    private static array $ballast = [];

    public function __construct(private CurrentUser $user, private Settings $settings, private LastVisitor $visitor)
    {
    }

    public function state(Request $request, string $what): JsonResponse
    {
        $as = $request->query->get('as');
        switch ($what) {
            case 'static':      // a static array: not reset
                self::$seen[] = (string) $as;
                return $this->json(['seen' => self::$seen]);
            case 'singleton':   // a resettable per-request singleton: reset
                $found = $this->user->name();
                $this->user->set($as);
                return $this->json(['found' => $found]);
            case 'config':      // a setting changed by the request: reset
                $found = $this->settings->get('greeting');
                if ($as !== null) {
                    $this->settings->set('greeting', $as);
                }
                return $this->json(['found' => $found]);
            case 'holder':      // a service without reset(): not reset
                $found = $this->visitor->name;
                $this->visitor->name = $as;
                return $this->json(['found' => $found]);
            case 'terminated':  // kernel.terminate of the previous request (a static: not reset)
                return $this->json(['last' => TerminateProbe::$last, 'pid' => getmypid()]);
            case 'memory':      // a leak the reset cannot see: worker.max_memory retires the worker
                self::$ballast[] = str_repeat('x', max(0, min(64, $request->query->getInt('mb', 1))) << 20);
                return $this->json(['held_mib' => count(self::$ballast), 'pid' => getmypid()]);
        }
        throw $this->createNotFoundException("no state demo \"$what\"");
    }
}
