<?php

// drover's Laravel worker (docs/php.md, Laravel).
return [
    // Singletons resolved at boot that keep per-request data: forgotten
    // after each request, so that the next one resolves them anew (as
    // Octane's 'flush'). A singleton first resolved during a request needs
    // no entry: everything a request resolved is dropped after it.
    'flush' => [
        App\Services\CurrentUser::class,
    ],
];
