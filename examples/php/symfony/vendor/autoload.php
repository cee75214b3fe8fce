<?php

// What `composer install` would generate for this app, written by hand for
// Debian's packages (apt-get install php-symfony-framework-bundle
// php-symfony-runtime php-symfony-dotenv php-symfony-yaml): Debian installs
// each component with its own autoloader under /usr/share/php. An app
// installed with composer has its own vendor/ and needs none of this; it adds
// drover's SDK as a path repository instead (docs/php.md, Symfony).

require_once '/usr/share/php/Symfony/Bundle/FrameworkBundle/autoload.php';
require_once '/usr/share/php/Symfony/Component/Runtime/autoload.php';
require_once '/usr/share/php/Symfony/Component/Dotenv/autoload.php';
require_once '/usr/share/php/Symfony/Component/Yaml/autoload.php';

// drover's PHP SDK: Drover\Symfony\Runtime, chosen by APP_RUNTIME.
require_once __DIR__.'/../../../../worker/php/autoload.php';

// The app's own classes (composer.json: "App\\": "src/").
spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'App\\') && is_file($file = __DIR__.'/../src/'.strtr(substr($class, 4), '\\', '/').'.php')) {
        require $file;
    }
});
