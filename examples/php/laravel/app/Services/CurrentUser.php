<?php

namespace App\Services;

// A per-request singleton: the logged-in user's name, set by the
// SetCurrentUser middleware. Listed in config/drover.php's 'flush'.
class CurrentUser
{
    public ?string $name = null;
}
