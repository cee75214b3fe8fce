<?php

return [
    'name' => 'fixture',
    'env' => 'production',
    'debug' => false,
    'url' => 'http://localhost',
    'locale' => 'en',
    'fallback_locale' => 'en',
    'key' => 'base64:'.base64_encode(str_repeat('k', 32)),
    'cipher' => 'AES-256-CBC',
    'greeting' => 'Hello',
    'providers' => [
        Illuminate\Database\DatabaseServiceProvider::class,
        Illuminate\Filesystem\FilesystemServiceProvider::class,
        Illuminate\View\ViewServiceProvider::class,
        Drover\Tests\Laravel\Fixtures\FixtureProvider::class,
    ],
];
