<?php

return [
    'defaults' => ['guard' => 'web', 'passwords' => 'users'],
    'guards' => [
        'web' => ['driver' => 'session', 'provider' => 'users'],
    ],
    // Users in memory (App\Auth\DemoUserProvider): the demo has no database of users.
    'providers' => [
        'users' => ['driver' => 'demo'],
    ],
    'password_timeout' => 10800,
];
