<?php

declare(strict_types=1);

namespace Drover\Tests\Laravel;

use Drover\Laravel\CompiledRoutes;
use Illuminate\Container\Container;
use Illuminate\Events\Dispatcher;
use Illuminate\Http\Request;
use Illuminate\Routing\CompiledRouteCollection;
use Illuminate\Routing\RouteCollection;
use Illuminate\Routing\Router;
use PHPUnit\Framework\TestCase;
use Symfony\Component\HttpKernel\Exception\NotFoundHttpException;

final class CompiledRoutesTest extends TestCase
{
    public static function setUpBeforeClass(): void
    {
        if (!is_file('/usr/share/php/Illuminate/autoload.php')) {
            throw new \RuntimeException("the Laravel tests need Debian's Laravel 8: apt-get install php-laravel-framework php-sqlite3 (.ci/run does it)");
        }
        require_once '/usr/share/php/Illuminate/autoload.php';
    }

    /** A router with the routes `php artisan route:cache` would have left, as Router::setCompiledRoutes() loads them. */
    private static function cachedRouter(Container $app): Router
    {
        $routes = new RouteCollection();
        $router = new Router(new Dispatcher($app), $app);
        $router->setRoutes($routes);
        $router->get('/users/{id}', ['uses' => 'App\Users@show', 'as' => 'users.show'])->where('id', '[0-9]+');
        $router->get('/hello', ['uses' => 'App\Hello@__invoke', 'as' => 'hello']);
        $router->post('/hello', ['uses' => 'App\Hello@store']);   // no name: route:cache names it
        foreach ($routes as $route) {
            $route->prepareForSerialization();
        }
        $router->setCompiledRoutes($routes->compile());
        return $router;
    }

    public function testEachCachedRouteIsMadeOnceAndBoundPerRequest(): void
    {
        $app = new Container();
        $router = self::cachedRouter($app);
        self::assertSame(CompiledRouteCollection::class, $router->getRoutes()::class);
        $fresh = $router->getRoutes()->match(Request::create('/hello'));
        self::assertNotSame($fresh, $router->getRoutes()->match(Request::create('/hello')), "Laravel's makes one per request");

        CompiledRoutes::install($router, $app);
        $routes = $router->getRoutes();
        self::assertInstanceOf(CompiledRoutes::class, $routes);
        self::assertSame($routes, $app->make('routes'));

        $one = $routes->match(Request::create('/users/1'));
        self::assertSame(['id' => '1'], $one->parameters());
        $two = $routes->match(Request::create('/users/2'));
        self::assertSame($one, $two, 'the same route for every request');
        self::assertSame(['id' => '2'], $two->parameters(), 'with the parameters of the request it was matched for');
        self::assertSame('users.show', $two->getName());
        self::assertSame($two, $routes->getByName('users.show'));
        self::assertSame('App\Hello@store', $routes->match(Request::create('/hello', 'POST'))->getActionName());
        self::assertSame('App\Hello@__invoke', $routes->match(Request::create('/hello'))->getActionName());
        self::assertCount(3, $routes->getRoutes());

        // A route added after the cache was loaded still answers; what has none is a 404.
        $router->get('/late', ['uses' => 'App\Late@show']);
        self::assertSame('late', $routes->match(Request::create('/late'))->uri());
        $this->expectException(NotFoundHttpException::class);
        $routes->match(Request::create('/users/x'));
    }

    public function testRoutesNotCachedAreLeftAlone(): void
    {
        $app = new Container();
        $router = new Router(new Dispatcher($app), $app);
        $before = $router->getRoutes();
        CompiledRoutes::install($router, $app);
        self::assertSame($before, $router->getRoutes());
    }
}
