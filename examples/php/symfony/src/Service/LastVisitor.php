<?php

namespace App\Service;

// A service that keeps request data and has no reset(): under php-fpm it is
// built anew for every request; in a resident worker (drover, FrankenPHP,
// RoadRunner) the next request sees what the previous one left. Implement
// Symfony\Contracts\Service\ResetInterface (as CurrentUser does) to fix it.
class LastVisitor
{
    public ?string $name = null;
}
