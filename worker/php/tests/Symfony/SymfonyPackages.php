<?php

declare(strict_types=1);

namespace Drover\Tests\Symfony;

/**
 * Loads Debian's Symfony 5.4 packages for the Symfony tests, or fails them
 * saying what to install (.ci/run installs them).
 */
final class SymfonyPackages
{
    public static function load(): void
    {
        $files = [
            '/usr/share/php/Symfony/Bundle/FrameworkBundle/autoload.php',
            '/usr/share/php/Symfony/Component/Runtime/autoload.php',
        ];
        foreach ($files as $f) {
            if (!is_file($f)) {
                throw new \RuntimeException("$f is missing: the Symfony tests need Debian's Symfony 5.4 packages: apt-get install php-symfony-framework-bundle php-symfony-runtime (.ci/run does it)");
            }
            require_once $f;
        }
    }
}
