<?php

namespace App\Service;

use Symfony\Contracts\Service\ResetInterface;

// Settings a request may change for itself (a greeting, a locale). As a
// resettable service it is back to its defaults for the next request.
class Settings implements ResetInterface
{
    private const DEFAULTS = ['greeting' => 'Hello'];

    private array $values = self::DEFAULTS;

    public function get(string $key): mixed
    {
        return $this->values[$key] ?? null;
    }

    public function set(string $key, mixed $value): void
    {
        $this->values[$key] = $value;
    }

    public function reset(): void
    {
        $this->values = self::DEFAULTS;
    }
}
