<?php

// A PHP worker whose bootstrap fails, as one whose database is down.

declare(strict_types=1);

require __DIR__ . '/../../../worker/php/autoload.php';

throw new RuntimeException('cannot reach the database at db:5432');
