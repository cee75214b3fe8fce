<?php

declare(strict_types=1);

/*
 * Loads drover's PHP SDK without composer: require this file and use the
 * Drover\ classes (PSR-4: Drover\Foo\Bar is src/Foo/Bar.php). With composer,
 * its own autoloader does the same from composer.json.
 *
 * Debian's PSR-7 and Slim packages (php-nyholm-psr7, php-slim) ship their own
 * autoloaders under /usr/share/php; Drover\Psr7\Worker loads them when it
 * needs them and they are not loaded yet.
 */

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'Drover\\', 7) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 7)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});

require __DIR__ . '/boot.php';
