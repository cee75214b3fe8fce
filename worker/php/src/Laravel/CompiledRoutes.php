<?php

declare(strict_types=1);

namespace Drover\Laravel;

use Illuminate\Container\Container;
use Illuminate\Routing\CompiledRouteCollection;
use Illuminate\Routing\Route;
use Illuminate\Routing\Router;

/**
 * The routes of `php artisan route:cache` as a resident worker wants them.
 * Laravel's CompiledRouteCollection makes a new Route, compiled anew, for
 * each request it matches (under php-fpm everything is new anyway); this
 * one makes each cached route once and hands the same object to every
 * request that matches it, as the RouteCollection of uncached routes does.
 * Route::bind() gives each request its own parameters and the Sandbox has
 * the route forget its controller after each request.
 */
final class CompiledRoutes extends CompiledRouteCollection
{
    /** @var array<string, Route> route name => the route made of its cached attributes */
    private array $made = [];

    /**
     * Puts the router's cached routes in a CompiledRoutes, when they are
     * Laravel's own CompiledRouteCollection (routes not cached, or an app's
     * own collection class, are left as they are).
     */
    public static function install(Router $router, Container $app): void
    {
        $routes = $router->getRoutes();
        if ($routes::class !== CompiledRouteCollection::class) {
            return;
        }
        $mine = new self($routes->compiled, $routes->attributes);
        $mine->routes = $routes->routes;
        $mine->router = $routes->router;
        $mine->container = $routes->container;
        (function () use ($mine): void {
            $this->routes = $mine;
        })->call($router);
        // As Router::setCompiledRoutes() does; the URL generator follows.
        $app->instance('routes', $mine);
    }

    /** @param string $name */
    public function getByName($name)
    {
        if (isset($this->attributes[$name])) {
            return $this->made[$name] ??= parent::getByName($name);
        }
        return parent::getByName($name);
    }
}
