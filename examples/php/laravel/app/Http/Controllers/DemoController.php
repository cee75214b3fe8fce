<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;

// An ordinary Laravel controller: nothing in it knows drover.
class DemoController extends Controller
{
    // GET /?name=drover: a Blade view.
    public function welcome(Request $request)
    {
        return view('welcome', ['name' => $request->query('name', 'world'), 'links' => [
            '/hello?name=drover' => 'JSON', '/stream' => 'a streamed response', '/download' => 'a file',
        ]]);
    }

    // GET /hello?name=drover: JSON.
    public function hello(Request $request)
    {
        return response()->json(['hello' => $request->query('name', 'world')]);
    }

    // GET /request: what Laravel makes of the request (server vars, client IP, HTTPS).
    public function facts(Request $request)
    {
        $server = [];
        foreach (['REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'SCRIPT_NAME', 'SERVER_NAME', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'HTTPS', 'HTTP_HOST'] as $key) {
            $server[$key] = $request->server($key);
        }
        return response()->json([
            'method' => $request->method(),
            'url' => $request->url(),
            'full_url' => $request->fullUrl(),
            'path' => $request->path(),
            'query' => $request->query(),
            'cookies' => $request->cookies->all(),
            'ip' => $request->ip(),
            'secure' => $request->secure(),
            'accept' => $request->header('accept'),
            'ajax' => $request->ajax(),
            'wants_json' => $request->wantsJson(),
            'server' => $server,
        ]);
    }

    // GET /redirect: 302 to /hello?name=redirected.
    public function redirectToHello()
    {
        return redirect('/hello?name=redirected');
    }

    // GET /stream: a streamed response, sent as the callback echoes it.
    public function streamLines(Request $request)
    {
        $n = min(1000, max(1, (int) $request->query('n', 5)));
        return response()->stream(static function () use ($n) {
            for ($i = 1; $i <= $n; $i++) {
                echo "line $i of $n\n";
                ob_flush();
                flush();
            }
        }, 200, ['Content-Type' => 'text/plain; charset=utf-8', 'X-Accel-Buffering' => 'no']);
    }

    // GET /download: a file download (Range requests answer 206).
    public function download()
    {
        $file = storage_path('framework/cache/report.bin');
        if (!is_file($file)) {
            $bytes = '';
            for ($i = 0; $i < 70000; $i++) {
                $bytes .= chr(($i * 7 + intdiv($i, 251)) & 0xff);
            }
            file_put_contents("$file.".getmypid(), $bytes);
            rename("$file.".getmypid(), $file);
        }
        return response()->download($file, 'report.bin', ['Content-Type' => 'application/octet-stream']);
    }

    // GET /boom: an exception (500); ?kind=warning: a PHP warning, which
    // Laravel turns into an exception (500 too); ?kind=error: a TypeError.
    public function boom(Request $request)
    {
        switch ($request->query('kind')) {
            case 'warning':
                $none = [];
                return $none['missing'];
            case 'error':
                return strlen([]);
        }
        throw new \RuntimeException('boom from the controller');
    }

    // POST /form: an urlencoded (or multipart) form.
    public function form(Request $request)
    {
        return response()->json(['fields' => $request->post(), 'query' => $request->query(), 'all' => $request->all()]);
    }

    // POST or PUT /json: a JSON body.
    public function postJson(Request $request)
    {
        $data = json_decode($request->getContent(), true);
        if (!is_array($data)) {
            return response()->json(['error' => 'want a JSON object'], 400);
        }
        ksort($data);
        return response()->json(['received' => $data, 'input_keys' => array_keys($request->input()), 'method' => $request->method()], 201);
    }

    // POST /upload: multipart fields and files; ?keep=1 stores the first file.
    public function upload(Request $request)
    {
        $files = [];
        foreach ($request->allFiles() as $field => $file) {
            foreach (is_array($file) ? $file : [$file] as $f) {
                $files[] = [
                    'field' => $field,
                    'name' => $f->getClientOriginalName(),
                    'type' => $f->getClientMimeType(),
                    'size' => $f->getSize(),
                    'valid' => $f->isValid(),
                    'sha1' => sha1_file($f->getRealPath()),
                ];
            }
        }
        $stored = null;
        if ($request->boolean('keep') && $files) {
            $first = $request->file($files[0]['field']);
            $first = is_array($first) ? $first[0] : $first;
            $path = $first->storeAs('uploads', sha1(random_bytes(8)).'.bin', 'local');
            $stored = filesize(storage_path("app/$path"));
            unlink(storage_path("app/$path"));
        }
        return response()->json(['fields' => $request->except(array_keys($request->allFiles())), 'files' => $files, 'stored' => $stored]);
    }
}
