<?php

namespace App\Services;

// A singleton resolved at boot that keeps request data and is not listed
// in config/drover.php's 'flush': in a resident worker the next request
// sees what the previous one left. List it there to fix it.
class LastVisitor
{
    public ?string $name = null;
}
