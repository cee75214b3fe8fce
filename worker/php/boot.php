<?php

declare(strict_types=1);

// A worker that dies before it serves (an exception or a fatal error in its
// bootstrap, or a script that never calls serve()) says why in one line and
// exits 78, which drover's protocol reserves for a failed start: drover
// backs off instead of restarting it in a loop, and shows the line in
// `drover status`. Loaded by autoload.php, and by composer's autoloader.

Drover\Runtime\Boot::guard();
