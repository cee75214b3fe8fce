<?php

namespace App\Http\Controllers;

use App\Services\CurrentUser;
use App\Services\LastVisitor;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\DB;

// What drover's Laravel sandbox resets between requests, and what it does
// not (docs/php.md, "Laravel"). Each route answers what the request found,
// then leaves state behind for the next one.
class StateController extends Controller
{
    /** @var list<string> kept by PHP for the life of the process */
    private static array $seen = [];

    /** @var list<string> grows by ?mb= MiB per request */
    private static array $ballast = [];

    /** the request terminate() last ran for */
    public static ?string $terminated = null;

    public function state(Request $request, string $what)
    {
        $as = $request->query('as');
        app()->terminating(static function () use ($request) {
            self::$terminated = $request->method().' /'.$request->path();
        });
        switch ($what) {
            case 'static':      // a static array: not reset
                self::$seen[] = (string) $as;
                return ['seen' => self::$seen];
            case 'singleton':   // a boot-resolved singleton listed in drover.flush: reset
                $current = app(CurrentUser::class);
                $found = $current->name;
                $current->name = $as;
                return ['found' => $found];
            case 'config':      // a config value changed by the request: reset
                $found = config('app.greeting');
                if ($as !== null) {
                    config(['app.greeting' => $as]);
                }
                return ['found' => $found];
            case 'holder':      // a boot-resolved singleton not listed in drover.flush: not reset
                $visitor = app(LastVisitor::class);
                $found = $visitor->name;
                $visitor->name = $as;
                return ['found' => $found];
            case 'transaction': // a transaction left open: rolled back
                $found = DB::transactionLevel();
                if ($as !== null) {
                    DB::beginTransaction();
                }
                return ['found' => $found];
            case 'terminated':  // terminate() of the previous request
                return ['last' => self::$terminated, 'pid' => getmypid()];
            case 'memory':      // a leak no reset can see: worker.max_memory retires the worker
                self::$ballast[] = str_repeat('x', max(0, min(64, (int) $request->query('mb', 1))) << 20);
                return ['held_mib' => count(self::$ballast), 'pid' => getmypid()];
        }
        abort(404);
    }
}
