<?php

namespace App\Http\Middleware;

use Illuminate\Http\Middleware\TrustProxies as Middleware;
use Illuminate\Http\Request;

// Behind a TLS-terminating proxy on this host: X-Forwarded-For gives the
// client's address, X-Forwarded-Proto the HTTPS flag.
class TrustProxies extends Middleware
{
    protected $proxies = ['127.0.0.1'];

    protected $headers = Request::HEADER_X_FORWARDED_FOR | Request::HEADER_X_FORWARDED_HOST | Request::HEADER_X_FORWARDED_PORT | Request::HEADER_X_FORWARDED_PROTO;
}
