<?php

// A small Slim 3 app (Debian's php-slim), written as for php-fpm. It does
// not know drover: index.php hands it to Drover\Psr7\Worker, which runs it
// resident under drover and as usual under php-fpm.

declare(strict_types=1);

require_once '/usr/share/php/Slim/autoload.php';

use Psr\Http\Message\ResponseInterface as Response;
use Psr\Http\Message\ServerRequestInterface as Request;

$app = new Slim\App(['settings' => ['displayErrorDetails' => false]]);

// GET with a route argument and a query parameter.
$app->get('/hello/{name}', function (Request $req, Response $res, array $args) {
    $greeting = $req->getQueryParams()['greeting'] ?? 'Hello';
    return $res->withHeader('Content-Type', 'text/plain; charset=utf-8')
        ->write(sprintf('%s, %s!', $greeting, $args['name']));
});

// POST JSON: echoes the decoded body with a computed field.
$app->post('/json', function (Request $req, Response $res) {
    $data = $req->getParsedBody();
    if (!is_array($data)) {
        return $res->withJson(['error' => 'want a JSON object'], 400);
    }
    ksort($data);
    return $res->withJson(['received' => $data, 'keys' => count($data)], 201);
});

// POST multipart: fields and an uploaded file.
$app->post('/upload', function (Request $req, Response $res) {
    $out = ['fields' => $req->getParsedBody(), 'files' => []];
    foreach ($req->getUploadedFiles() as $name => $file) {
        $stream = $file->getStream();
        $contents = (string) $stream;
        $out['files'][$name] = [
            'name' => $file->getClientFilename(),
            'type' => $file->getClientMediaType(),
            'size' => $file->getSize(),
            'error' => $file->getError(),
            'sha1' => sha1($contents),
        ];
    }
    return $res->withJson($out);
});

// Cookies, headers and the request line.
$app->get('/info', function (Request $req, Response $res) {
    return $res->withJson([
        'method' => $req->getMethod(),
        'path' => $req->getUri()->getPath(),
        'query' => $req->getQueryParams(),
        'cookies' => $req->getCookieParams(),
        'accept' => $req->getHeaderLine('Accept'),
    ])->withHeader('X-Served-By', 'slim');
});

// Routes a real app has, so that building the app costs what a real one does.
foreach (['users', 'orders', 'products', 'invoices', 'reports', 'teams', 'projects', 'tickets'] as $thing) {
    $app->group("/api/$thing", function () use ($thing) {
        $this->get('', fn (Request $req, Response $res) => $res->withJson(['list' => $thing]));
        $this->get('/{id:[0-9]+}', fn (Request $req, Response $res, array $a) => $res->withJson([$thing => (int) $a['id']]));
    });
}

return $app;
