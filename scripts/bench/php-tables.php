<?php

// Drover\Table against APCu in the same PHP: get, set and incr per second
// on 1,000 keys of the issue's cache row (value string(256), hits int,
// updated float). APCu keeps a row as one serialized array and a counter
// as a key of its own (apcu_inc cannot add to a field). Run by
// scripts/bench/tables.sh under scripts/shmhost (the table) with
// -d apc.enable_cli=1 (APCu in the CLI).
//
//   php -d apc.enable_cli=1 scripts/bench/php-tables.php [seconds per case, default 1]

declare(strict_types=1);

require __DIR__ . '/../../worker/php/autoload.php';

$seconds = (float) ($argv[1] ?? 1);
$keys = [];
for ($i = 0; $i < 1000; $i++) {
    $keys[] = "k$i";
}
$row = ['value' => str_repeat('v', 30), 'hits' => 1, 'updated' => 1.5];

/** Runs $fn($key) over the keys for $seconds; operations per second. */
function rate(float $seconds, array $keys, Closure $fn): float
{
    $n = 0;
    $start = hrtime(true);
    $until = $start + (int) ($seconds * 1e9);
    do {
        foreach ($keys as $k) {
            $fn($k);
        }
        $n += count($keys);
    } while (hrtime(true) < $until);
    return $n / ((hrtime(true) - $start) / 1e9);
}

$results = [];
$t = new Drover\Table('cache');
foreach ($keys as $k) {
    $t->set($k, $row);
}
$results['Drover\Table get'] = rate($seconds, $keys, static fn ($k) => $t->get($k));
$results['Drover\Table get (one column)'] = rate($seconds, $keys, static fn ($k) => $t->get($k, 'hits'));
$results['Drover\Table set'] = rate($seconds, $keys, static fn ($k) => $t->set($k, $row));
$results['Drover\Table incr'] = rate($seconds, $keys, static fn ($k) => $t->incr($k, 'hits'));

if (function_exists('apcu_enabled') && apcu_enabled()) {
    foreach ($keys as $k) {
        apcu_store($k, $row);
        apcu_store("hits:$k", 1);
    }
    $results['APCu get'] = rate($seconds, $keys, static fn ($k) => apcu_fetch($k));
    $results['APCu set'] = rate($seconds, $keys, static fn ($k) => apcu_store($k, $row));
    $results['APCu incr'] = rate($seconds, $keys, static fn ($k) => apcu_inc("hits:$k"));
} else {
    fwrite(STDERR, "APCu is not enabled: apt-get install php-apcu, and run with -d apc.enable_cli=1\n");
}
$results['PHP array get (one process only)'] = (static function () use ($seconds, $keys, $row): float {
    $a = array_fill_keys($keys, $row);
    return rate($seconds, $keys, static fn ($k) => $a[$k]);
})();

printf("%-34s %14s %10s\n", 'operation', 'ops/s', 'ns/op');
foreach ($results as $name => $r) {
    printf("%-34s %14s %10.0f\n", $name, number_format($r), 1e9 / $r);
}
