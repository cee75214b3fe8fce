<?php

// A plain PSR-7 / PSR-15 app on Debian's php-nyholm-psr7, served by
// Drover\Psr7\Worker (the e2e tests' PSR-7 worker).

declare(strict_types=1);

require __DIR__ . '/../../../worker/php/autoload.php';
require_once '/usr/share/php/Nyholm/Psr7/autoload.php';

use Nyholm\Psr7\Response;
use Nyholm\Psr7\Stream;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;

Drover\Psr7\Worker::serve(new class {
    public function handle(ServerRequestInterface $r): ResponseInterface
    {
        if ($r->getUri()->getPath() === '/big') {
            // A body of unknown size: drover streams it.
            $f = fopen('php://temp', 'w+');
            for ($i = 0; $i < 64; $i++) {
                fwrite($f, str_repeat(chr(97 + $i % 26), 65536));
            }
            rewind($f);
            return new Response(200, ['Content-Type' => 'application/octet-stream'], Stream::create($f));
        }
        $files = [];
        foreach ($r->getUploadedFiles() as $name => $file) {
            $files[$name] = [$file->getClientFilename(), $file->getSize(), sha1((string) $file->getStream())];
        }
        return new Response(200, ['Content-Type' => 'application/json', 'X-Method' => $r->getMethod()], json_encode([
            'path' => $r->getUri()->getPath(),
            'query' => $r->getQueryParams(),
            'host' => $r->getUri()->getHost(),
            'cookies' => $r->getCookieParams(),
            'parsed' => $r->getParsedBody(),
            'body' => (string) $r->getBody(),
            'files' => $files,
            'accept' => $r->getHeaderLine('accept'),
            'remote' => $r->getServerParams()['REMOTE_ADDR'] ?? null,
        ]));
    }
});
