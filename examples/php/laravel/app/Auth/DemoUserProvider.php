<?php

namespace App\Auth;

use Illuminate\Auth\GenericUser;
use Illuminate\Contracts\Auth\Authenticatable;
use Illuminate\Contracts\Auth\UserProvider;

// Two users in memory, for the demo (a real app keeps them in a database).
class DemoUserProvider implements UserProvider
{
    private const USERS = [
        1 => ['id' => 1, 'name' => 'alice', 'password' => 'alice-secret', 'remember_token' => null],
        2 => ['id' => 2, 'name' => 'bob', 'password' => 'bob-secret', 'remember_token' => null],
    ];

    public function retrieveById($identifier)
    {
        return isset(self::USERS[$identifier]) ? new GenericUser(self::USERS[$identifier]) : null;
    }

    public function retrieveByToken($identifier, $token)
    {
        return null;
    }

    public function updateRememberToken(Authenticatable $user, $token)
    {
    }

    public function retrieveByCredentials(array $credentials)
    {
        foreach (self::USERS as $user) {
            if ($user['name'] === ($credentials['name'] ?? null)) {
                return new GenericUser($user);
            }
        }
        return null;
    }

    public function validateCredentials(Authenticatable $user, array $credentials)
    {
        return hash_equals($user->getAuthPassword(), (string) ($credentials['password'] ?? ''));
    }
}
