<?php

// What `composer install` would generate for this app, written by hand for
// Debian's packages (apt-get install php-laravel-framework php-sqlite3):
// Debian installs each library with its own autoloader under /usr/share/php.
// An app installed with composer has its own vendor/ and needs none of this.

require_once '/usr/share/php/Illuminate/autoload.php';

// The app's own classes (composer.json: "App\\": "app/").
spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'App\\') && is_file($file = __DIR__.'/../app/'.strtr(substr($class, 4), '\\', '/').'.php')) {
        require $file;
    }
});
