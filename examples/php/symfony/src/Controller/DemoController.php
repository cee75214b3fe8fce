<?php

namespace App\Controller;

use Symfony\Bundle\FrameworkBundle\Controller\AbstractController;
use Symfony\Component\HttpFoundation\BinaryFileResponse;
use Symfony\Component\HttpFoundation\File\UploadedFile;
use Symfony\Component\HttpFoundation\JsonResponse;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpFoundation\Response;
use Symfony\Component\HttpFoundation\ResponseHeaderBag;
use Symfony\Component\HttpFoundation\StreamedResponse;

// An ordinary Symfony controller: nothing in it knows drover.
class DemoController extends AbstractController
{
    // GET /hello?name=drover: JSON.
    public function hello(Request $request): JsonResponse
    {
        return $this->json(['hello' => $request->query->get('name', 'world')]);
    }

    // GET /request: what Symfony makes of the request (server vars, client IP, HTTPS).
    public function facts(Request $request): JsonResponse
    {
        $server = [];
        foreach (['REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'SCRIPT_NAME', 'PHP_SELF', 'SERVER_NAME', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'HTTPS', 'HTTP_HOST', 'CONTENT_TYPE'] as $key) {
            $server[$key] = $request->server->get($key);
        }
        return $this->json([
            'method' => $request->getMethod(),
            'uri' => $request->getUri(),
            'base_url' => $request->getBaseUrl(),
            'path_info' => $request->getPathInfo(),
            'query' => $request->query->all(),
            'cookies' => $request->cookies->all(),
            'client_ip' => $request->getClientIp(),
            'secure' => $request->isSecure(),
            'scheme' => $request->getScheme(),
            'port' => $request->getPort(),
            'accept' => $request->headers->get('accept'),
            'languages' => $request->getLanguages(),
            'ajax' => $request->isXmlHttpRequest(),
            'server' => $server,
        ]);
    }

    // GET /redirect: 302 to /hello?name=redirected.
    public function redirectToHello(): Response
    {
        return $this->redirectToRoute('hello', ['name' => 'redirected']);
    }

    // GET /stream: a StreamedResponse, sent as the callback echoes it.
    public function streamLines(Request $request): StreamedResponse
    {
        $n = min(1000, max(1, $request->query->getInt('n', 5)));
        return new StreamedResponse(static function () use ($n): void {
            for ($i = 1; $i <= $n; $i++) {
                echo "line $i of $n\n";
                ob_flush();
                flush();
            }
        }, 200, ['Content-Type' => 'text/plain; charset=utf-8', 'X-Accel-Buffering' => 'no']);
    }

    // GET /download: a BinaryFileResponse (Range requests answer 206).
    public function download(): BinaryFileResponse
    {
        $file = $this->getParameter('kernel.project_dir').'/var/report.bin';
        if (!is_file($file)) {
            $bytes = '';
            for ($i = 0; $i < 70000; $i++) {
                $bytes .= chr(($i * 7 + intdiv($i, 251)) & 0xff);
            }
            @mkdir(dirname($file), 0777, true);
            file_put_contents("$file.".getmypid(), $bytes);
            rename("$file.".getmypid(), $file);
        }
        return new BinaryFileResponse($file, 200, ['Content-Type' => 'application/octet-stream'], false, ResponseHeaderBag::DISPOSITION_ATTACHMENT, false, false);
    }

    // GET /boom: an exception; Symfony answers its 500 page. ?kind=error: a
    // PHP Error (a TypeError), which HttpKernel does not catch itself.
    public function boom(Request $request): Response
    {
        if ($request->query->get('kind') === 'error') {
            return strlen([]);
        }
        throw new \RuntimeException('boom from the controller');
    }

    // POST /form: an urlencoded (or multipart) form.
    public function form(Request $request): JsonResponse
    {
        return $this->json(['fields' => $request->request->all(), 'query' => $request->query->all(), 'type' => $request->getContentType()]);
    }

    // POST or PUT /json: a JSON body.
    public function postJson(Request $request): JsonResponse
    {
        $data = json_decode($request->getContent(), true);
        if (!is_array($data)) {
            return $this->json(['error' => 'want a JSON object'], 400);
        }
        ksort($data);
        return $this->json(['received' => $data, 'method' => $request->getMethod()], 201);
    }

    // POST /upload: multipart fields and files; ?keep=1 moves the first file to var/uploads.
    public function upload(Request $request): JsonResponse
    {
        $files = [];
        foreach ($request->files->all() as $field => $file) {
            foreach (is_array($file) ? $file : [$file] as $i => $f) {
                /** @var ?UploadedFile $f */
                if ($f === null) {
                    $files[] = ['field' => $field, 'empty' => true];   // a file input left empty
                    continue;
                }
                $files[] = [
                    'field' => $field,
                    'name' => $f->getClientOriginalName(),
                    'type' => $f->getClientMimeType(),
                    'size' => $f->getSize(),
                    'error' => $f->getError(),
                    'valid' => $f->isValid(),
                    'sha1' => sha1_file($f->getPathname()),
                ];
            }
        }
        $moved = null;
        if ($request->query->getBoolean('keep') && $files) {
            $first = $request->files->all()[$files[0]['field']];
            $first = is_array($first) ? $first[0] : $first;
            $target = $first->move($this->getParameter('kernel.project_dir').'/var/uploads', sha1(random_bytes(8)).'.bin');
            $moved = $target->getSize();
            unlink($target->getPathname());
        }
        return $this->json(['fields' => $request->request->all(), 'files' => $files, 'moved' => $moved]);
    }
}
