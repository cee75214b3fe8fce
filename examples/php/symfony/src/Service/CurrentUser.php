<?php

namespace App\Service;

use Symfony\Contracts\Service\ResetInterface;

// A per-request singleton: who is logged in, set by UserListener from the
// session. It implements ResetInterface, so Symfony tags it kernel.reset
// (autoconfigure) and the container's services_resetter empties it after
// each request: under a resident worker the next request, another user's,
// starts with nobody logged in.
class CurrentUser implements ResetInterface
{
    private ?string $name = null;

    public function set(?string $name): void
    {
        $this->name = $name;
    }

    public function name(): ?string
    {
        return $this->name;
    }

    public function reset(): void
    {
        $this->name = null;
    }
}
