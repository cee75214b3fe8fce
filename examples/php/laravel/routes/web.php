<?php

use App\Http\Controllers\DemoController;
use App\Http\Controllers\SessionController;
use App\Http\Controllers\StateController;
use Illuminate\Support\Facades\Route;

Route::get('/', [DemoController::class, 'welcome']);
Route::get('/hello', [DemoController::class, 'hello']);
Route::get('/request', [DemoController::class, 'facts']);
Route::get('/redirect', [DemoController::class, 'redirectToHello']);
Route::get('/stream', [DemoController::class, 'streamLines']);
Route::get('/download', [DemoController::class, 'download']);
Route::get('/boom', [DemoController::class, 'boom']);
Route::post('/form', [DemoController::class, 'form']);
Route::match(['post', 'put'], '/json', [DemoController::class, 'postJson']);
Route::post('/upload', [DemoController::class, 'upload']);
Route::post('/profile', [DemoController::class, 'form']);   // CSRF-protected: 419 without a token

Route::post('/login', [SessionController::class, 'login']);
Route::get('/me', [SessionController::class, 'me']);
Route::post('/logout', [SessionController::class, 'logout']);

Route::get('/state/{what}', [StateController::class, 'state']);
