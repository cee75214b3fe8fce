<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ config('app.name') }}</title></head>
<body>
<h1>{{ config('app.greeting') }}, {{ $name }}!</h1>
<ul>
@foreach ($links as $path => $what)
    <li><a href="{{ url($path) }}">{{ $what }}</a></li>
@endforeach
</ul>
</body>
</html>
