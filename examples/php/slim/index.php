<?php

// The front controller, the same under drover and php-fpm (nginx: try_files
// $uri /index.php). Under drover the app is built once per worker and each
// request runs through it; under php-fpm PHP builds it for every request.
//   make build && bin/drover start -c examples/php/slim/slim.yaml
//   curl 'http://127.0.0.1:8084/hello/drover?greeting=Hi'

declare(strict_types=1);

require __DIR__ . '/../../../worker/php/autoload.php';

Drover\Psr7\Worker::serve(require __DIR__ . '/app.php');
