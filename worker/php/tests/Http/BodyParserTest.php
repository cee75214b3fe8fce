<?php

declare(strict_types=1);

namespace Drover\Tests\Http;

use Drover\Http\BodyParser;
use Drover\Http\UploadedFile;
use PHPUnit\Framework\TestCase;

/**
 * BodyParser and UploadedFile.
 *
 * Besides the unit tests, testMatchesPhp sends the same raw requests to
 * PHP's built-in web server (`php -S`), which fills $_POST, $_FILES and
 * $_COOKIE with PHP's own parser, and compares. Cases that need other
 * php.ini limits run BodyParser in a child PHP with the same settings,
 * since those limits cannot be changed at run time.
 */
final class BodyParserTest extends TestCase
{
    private const B = 'drover-boundary-7MA4YWxk';
    private const MULTIPART = 'multipart/form-data; boundary=' . self::B;
    private const FORM = 'application/x-www-form-urlencoded';

    /** The php.ini settings BodyParser reads; `php -S` and child processes get the test's own values. */
    private const SETTINGS = ['post_max_size', 'max_input_vars', 'max_input_nesting_level', 'file_uploads',
        'max_file_uploads', 'upload_max_filesize', 'max_multipart_body_parts'];

    /** Replaces each tmp_name of a $_FILES array with the file's contents; shared by the scripts below. */
    private const WITH_CONTENTS = <<<'PHP'
        function drover_with_contents(array $files): array
        {
            $read = static function (mixed $tmp) use (&$read): mixed {
                if (is_array($tmp)) {
                    return array_map($read, $tmp);
                }
                return $tmp === '' ? '' : 'contents:' . file_get_contents($tmp);
            };
            foreach ($files as $field => $entry) {
                $files[$field]['tmp_name'] = $read($entry['tmp_name']);
            }
            return $files;
        }
        PHP;

    /** The router of `php -S`: what PHP itself made of the request. */
    private const ROUTER = <<<'PHP'
        <?php
        declare(strict_types=1);
        %s
        echo serialize(['post' => $_POST, 'files' => drover_with_contents($_FILES), 'cookies' => $_COOKIE]);
        PHP;

    /** BodyParser's result for a request, in a child PHP with other php.ini limits. */
    private const CHILD = <<<'PHP'
        <?php
        declare(strict_types=1);
        set_error_handler(static function (int $type, string $message, string $file, int $line): bool {
            fwrite(STDERR, "$message in $file:$line\n");
            exit(70);
        });
        require $argv[1];
        %s
        [$contentType, $body, $cookie, $tmpDir] = unserialize(file_get_contents($argv[2]));
        [$post, $files] = Drover\Http\BodyParser::parse($contentType, $body, $tmpDir);
        echo serialize([
            'post' => $post,
            'files' => drover_with_contents(Drover\Http\BodyParser::legacyFiles($files)),
            'cookies' => Drover\Http\BodyParser::parseCookies($cookie ?? ''),
        ]);
        PHP;

    private string $dir;
    private string $uploads;

    /** @var resource|null the `php -S` process */
    private $server = null;

    protected function setUp(): void
    {
        $this->dir = sys_get_temp_dir() . '/drover-body-parser-' . bin2hex(random_bytes(6));
        $this->uploads = $this->dir . '/uploads';
        mkdir($this->uploads, 0700, true);
    }

    protected function tearDown(): void
    {
        if ($this->server !== null) {
            proc_terminate($this->server);
            proc_close($this->server);
            $this->server = null;
        }
        self::removeTree($this->dir);
    }

    // application/x-www-form-urlencoded, JSON and other types

    /** @dataProvider queryStrings */
    public function testUrlEncodedBodyGivesWhatParseStrGives(string $body): void
    {
        parse_str($body, $expected);
        self::assertSame([$expected, []], BodyParser::parse(self::FORM, $body));
    }

    public static function queryStrings(): iterable
    {
        yield 'plain' => ['a=1&b=two'];
        yield 'appending' => ['a[]=1&a[]=2&a[x]=3&a[]=4'];
        yield 'nesting' => ['a[b][c]=1&a[b][d]=2&a[e][][f]=3&a[e][][f]=4'];
        yield 'explicit then appended index' => ['n[5]=a&n[]=b&n[-7]=c&n[]=d'];
        yield 'scalar replaced by array' => ['a=1&a[x]=2&b[x]=1&b=2'];
        yield 'mangled names' => ['a.b=1&a+b=2&++lead=3&x[=4&y[a=5&z[a][b=6&w[a]b[c]=7&[k]=8&%5Bk%5D=9'];
        yield 'space in index' => ['s[+]=1&s[+]=2&t[+x]=3&u[%09]=4&v[++]=5'];
        yield 'encoding' => ['q=%26%3D%2B+plus%20&%C3%BC[k%C3%A9]=%C3%B6&bad=%zz%4'];
        yield 'empty parts' => ['&&empty=&novalue&=nokey&&'];
        yield 'numeric keys' => ['0=a&01=b&-1=c&9223372036854775807=d&9223372036854775808=e'];
        yield 'NUL in names' => ['a%00b=1&c[d%00e]=2&f=%00'];
    }

    /** @dataProvider formContentTypes */
    public function testUrlEncodedContentTypeIsMatchedAsPhpMatchesIt(string $contentType): void
    {
        self::assertSame([['a' => '1'], []], BodyParser::parse($contentType, 'a=1'));
    }

    public static function formContentTypes(): iterable
    {
        yield ['application/x-www-form-urlencoded'];
        yield ['APPLICATION/X-WWW-Form-Urlencoded'];
        yield ['application/x-www-form-urlencoded; charset=UTF-8'];
        yield ['application/x-www-form-urlencoded;charset=latin1'];
        yield ['application/x-www-form-urlencoded ; charset=UTF-8'];
        yield [' application/x-www-form-urlencoded'];
    }

    /** @dataProvider jsonBodies */
    public function testJsonBodyIsDecodedToArrays(string $contentType, string $body, mixed $expected): void
    {
        self::assertSame([$expected, []], BodyParser::parse($contentType, $body));
    }

    public static function jsonBodies(): iterable
    {
        yield 'object' => ['application/json', '{"a":{"b":[1,2.5,"x",null,true]}}', ['a' => ['b' => [1, 2.5, 'x', null, true]]]];
        yield 'with charset' => ['application/json; charset=utf-8', '[1,2]', [1, 2]];
        yield 'upper case' => ['Application/JSON', '{"a":1}', ['a' => 1]];
        yield '+json suffix' => ['application/vnd.api+json', '{"data":[]}', ['data' => []]];
        yield 'problem+json' => ['application/problem+json; charset=utf-8', '{"title":"x"}', ['title' => 'x']];
        yield 'scalar' => ['application/json', '"text"', 'text'];
        yield 'invalid' => ['application/json', '{"a":', null];
        yield 'empty' => ['application/json', '', null];
        yield 'not UTF-8' => ['application/json', "\"\xff\"", null];
    }

    /** @dataProvider unparsedContentTypes */
    public function testOtherBodiesAreNotParsed(string $contentType): void
    {
        self::assertSame([null, []], BodyParser::parse($contentType, 'a=1'));
    }

    public static function unparsedContentTypes(): iterable
    {
        yield [''];
        yield ['text/plain'];
        yield ['application/xml'];
        yield ['application/jsonx'];
        yield ['application/x-www-form-urlencodedx'];
        yield ['multipart/mixed; boundary=' . self::B];
    }

    public function testFormBodyLargerThanPostMaxSizeGivesNothing(): void
    {
        $output = $this->runChild(['post_max_size' => '100'], self::FORM, 'a=' . str_repeat('x', 99), null);
        self::assertSame([], $output['post']);
        $output = $this->runChild(['post_max_size' => '100'], self::FORM, 'a=' . str_repeat('x', 98), null);
        self::assertSame(['a' => str_repeat('x', 98)], $output['post']);
    }

    // multipart/form-data

    public function testMultipartFieldsFollowPhpBracketSemantics(): void
    {
        $body = self::multipart(
            self::field('a[b][c]', '1'),
            self::field('a[b][d]', '2'),
            self::field('list[]', 'x'),
            self::field('list[]', 'y'),
            self::field('list[k]', 'z'),
            self::field('list[]', 'w'),
            self::field('grid[][]', 'r0'),
            self::field('grid[][]', 'r1'),
            self::field('ünï[kéy]', 'välue'),
            self::field('empty', ''),
            self::field('dotted.name here', "multi\r\nline"),
            self::field('same', 'first'),
            self::field('same', 'second'),
        );
        [$post, $files] = BodyParser::parse(self::MULTIPART, $body, $this->uploads);
        self::assertSame([
            'a' => ['b' => ['c' => '1', 'd' => '2']],
            'list' => ['x', 'y', 'k' => 'z', 'w'],
            'grid' => [['r0'], ['r1']],
            'ünï' => ['kéy' => 'välue'],
            'empty' => '',
            'dotted_name_here' => "multi\r\nline",
            'same' => 'second',
        ], $post);
        self::assertSame([], $files);
    }

    public function testSingleUpload(): void
    {
        $content = "hello\r\nworld --" . self::B . "\r\n\x00\xff\r";
        $body = self::multipart(self::file('avatar', 'C:\\Users\\me\\photo.png', $content, 'image/png; name="photo.png"'));
        [$post, $files] = BodyParser::parse(self::MULTIPART, $body, $this->uploads);

        self::assertSame([], $post);
        self::assertSame(['avatar'], array_keys($files));
        $upload = $files['avatar'];
        self::assertInstanceOf(UploadedFile::class, $upload);
        self::assertSame(UPLOAD_ERR_OK, $upload->getError());
        self::assertSame(strlen($content), $upload->getSize());
        self::assertSame('photo.png', $upload->getClientFilename());
        self::assertSame('C:\\Users\\me\\photo.png', $upload->getClientFullPath());
        self::assertSame('image/png', $upload->getClientMediaType());
        self::assertSame($content, $upload->getContents());
        self::assertSame($this->uploads, dirname($upload->getFile()));
        self::assertStringStartsWith('drover-upload-', basename($upload->getFile()));
        self::assertSame([$upload->getFile()], $this->uploadedFiles());
    }

    public function testUploadTreeAndItsLegacyForm(): void
    {
        $body = self::multipart(
            self::field('title', 'x'),
            self::file('docs[]', 'a.txt', 'A'),
            self::file('docs[]', 'b.bin', 'BB', null),
            self::file('a[b][c]', 'dir/c.csv', 'CCC', 'text/csv'),
            self::file('plain', 'p.txt', 'P'),
        );
        [$post, $files] = BodyParser::parse(self::MULTIPART, $body, $this->uploads);

        self::assertSame(['title' => 'x'], $post);
        self::assertSame(['docs', 'a', 'plain'], array_keys($files));
        self::assertCount(2, $files['docs']);
        self::assertSame('A', $files['docs'][0]->getContents());
        self::assertSame('BB', $files['docs'][1]->getContents());
        self::assertSame('', $files['docs'][1]->getClientMediaType());
        self::assertSame('CCC', $files['a']['b']['c']->getContents());
        self::assertSame('c.csv', $files['a']['b']['c']->getClientFilename());

        $tmp = static fn (UploadedFile $f): string => $f->getFile();
        self::assertSame([
            'docs' => [
                'name' => ['a.txt', 'b.bin'],
                'full_path' => ['a.txt', 'b.bin'],
                'type' => ['text/plain', ''],
                'tmp_name' => [$tmp($files['docs'][0]), $tmp($files['docs'][1])],
                'error' => [0, 0],
                'size' => [1, 2],
            ],
            'a' => [
                'name' => ['b' => ['c' => 'c.csv']],
                'full_path' => ['b' => ['c' => 'dir/c.csv']],
                'type' => ['b' => ['c' => 'text/csv']],
                'tmp_name' => ['b' => ['c' => $tmp($files['a']['b']['c'])]],
                'error' => ['b' => ['c' => 0]],
                'size' => ['b' => ['c' => 3]],
            ],
            'plain' => [
                'name' => 'p.txt',
                'full_path' => 'p.txt',
                'type' => 'text/plain',
                'tmp_name' => $tmp($files['plain']),
                'error' => 0,
                'size' => 1,
            ],
        ], BodyParser::legacyFiles($files));
    }

    public function testFileInputLeftEmptyIsNoFile(): void
    {
        $body = self::multipart(self::file('missing', '', '', 'application/octet-stream'), self::file('blank', 'blank.txt', ''));
        [, $files] = BodyParser::parse(self::MULTIPART, $body, $this->uploads);

        $missing = $files['missing'];
        self::assertSame(UPLOAD_ERR_NO_FILE, $missing->getError());
        self::assertSame(['', 0, '', ''], [$missing->getFile(), $missing->getSize(), $missing->getClientFilename(), $missing->getClientMediaType()]);
        // A named but empty file is a file, as in PHP.
        self::assertSame(UPLOAD_ERR_OK, $files['blank']->getError());
        self::assertSame(0, $files['blank']->getSize());
        self::assertSame([$files['blank']->getFile()], $this->uploadedFiles());
    }

    /** @dataProvider boundaryForms */
    public function testBoundaryForms(string $contentType, string $boundary, string $eol = "\r\n"): void
    {
        $body = "--$boundary{$eol}Content-Disposition: form-data; name=\"a\"{$eol}{$eol}1{$eol}"
            . "--$boundary{$eol}Content-Disposition: form-data; name=\"f\"; filename=\"f.txt\"{$eol}{$eol}line1{$eol}line2{$eol}"
            . "--$boundary--$eol";
        [$post, $files] = BodyParser::parse($contentType, $body, $this->uploads);
        self::assertSame(['a' => '1'], $post);
        self::assertSame("line1{$eol}line2", $files['f']->getContents());
    }

    public static function boundaryForms(): iterable
    {
        yield 'plain' => ['multipart/form-data; boundary=abc', 'abc'];
        yield 'quoted' => ['multipart/form-data; boundary="a b;c,d"', 'a b;c,d'];
        yield 'more parameters' => ['Multipart/Form-Data; charset=utf-8; BOUNDARY=abc; x=y', 'abc'];
        yield 'comma' => ['multipart/form-data; boundary=abc, x=y', 'abc'];
        yield 'LF line endings' => ['multipart/form-data; boundary=abc', 'abc', "\n"];
    }

    public function testTruncatedBodyKeepsWhatCameBeforeTheCut(): void
    {
        $body = self::field('a', '1') . self::field('b', 'unterminated');
        self::assertSame([['a' => '1', 'b' => 'unterminated'], []], BodyParser::parse(self::MULTIPART, $body, $this->uploads));

        $body = self::field('a', '1') . "--" . self::B . "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\n\r\npartial";
        [$post, $files] = BodyParser::parse(self::MULTIPART, $body, $this->uploads);
        self::assertSame(['a' => '1'], $post);
        self::assertSame(UPLOAD_ERR_PARTIAL, $files['f']->getError());
        self::assertSame([], $this->uploadedFiles());
    }

    /** @dataProvider malformedBodies */
    public function testMalformedBodyNeitherWarnsNorThrows(string $contentType, string $body): void
    {
        // PHPUnit turns any warning or notice into a failure.
        [$post, $files] = BodyParser::parse($contentType, $body, $this->uploads);
        self::assertIsArray($post);
        self::assertSame(count(self::flatten($files, fn (UploadedFile $f) => $f->getFile() !== '')), count($this->uploadedFiles()));
    }

    public static function malformedBodies(): iterable
    {
        $d = '--' . self::B;
        yield 'empty' => [self::MULTIPART, ''];
        yield 'no delimiter' => [self::MULTIPART, "garbage\r\nmore garbage"];
        yield 'delimiter only' => [self::MULTIPART, $d];
        yield 'closing delimiter only' => [self::MULTIPART, "$d--\r\n"];
        yield 'headers never end' => [self::MULTIPART, "$d\r\nContent-Disposition: form-data; name=\"a\""];
        yield 'no content' => [self::MULTIPART, "$d\r\nContent-Disposition: form-data; name=\"a\"\r\n"];
        yield 'cut inside the delimiter' => [self::MULTIPART, "$d\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\nabc\r\n--drover-bou"];
        yield 'unterminated quotes' => [self::MULTIPART, "$d\r\nContent-Disposition: form-data; name=\"a; filename='b\r\n\r\nx\r\n$d--"];
        yield 'header without colon' => [self::MULTIPART, "$d\r\n: \r\nnonsense\r\n\tfolded\r\n\r\nx\r\n$d--"];
        yield 'unbalanced brackets' => [self::MULTIPART, self::multipart(self::file('a[b', 'x', '1'), self::file('a]', 'x', '1'), self::field('[', '1'), self::field(']]', '2'))];
        yield 'binary' => [self::MULTIPART, random_bytes(2048) . "\n$d\r\n" . random_bytes(2048)];
        yield 'NUL bytes' => [self::MULTIPART, "$d\r\nContent-Disposition: form-data; name=\"a\x00b\"\r\n\r\n\x00\r\n$d\x00\r\n$d--"];
        yield 'no boundary parameter' => ['multipart/form-data', "$d\r\n"];
        yield 'unterminated quoted boundary' => ['multipart/form-data; boundary="abc', "$d\r\n"];
        yield 'empty boundary' => ['multipart/form-data; boundary=', "--\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n----\r\n"];
    }

    public function testUploadLimits(): void
    {
        $body = self::multipart(
            self::file('big', 'big.txt', '123456'),
            self::file('none', '', ''),
            self::file('ok', 'ok.txt', '12345'),
            self::file('over', 'over.txt', '1'),
        );
        $output = $this->runChild(['upload_max_filesize' => '5', 'max_file_uploads' => '2'], self::MULTIPART, $body, null);

        self::assertSame(['big', 'none', 'ok'], array_keys($output['files']), 'files past max_file_uploads are dropped');
        self::assertSame([UPLOAD_ERR_INI_SIZE, UPLOAD_ERR_NO_FILE, UPLOAD_ERR_OK], array_column($output['files'], 'error'));
        self::assertSame(['', '', 'contents:12345'], array_column($output['files'], 'tmp_name'));
        self::assertCount(1, $this->uploadedFiles(), 'no temporary file is kept for a file over upload_max_filesize');
    }

    public function testReplacedUploadLosesItsTemporaryFile(): void
    {
        $body = self::multipart(self::file('f', 'one.txt', '1'), self::file('f', 'two.txt', '2'), self::file('g[a][b]', 'g.txt', 'g'), self::file('g', 'g2.txt', 'g2'));
        [, $files] = BodyParser::parse(self::MULTIPART, $body, $this->uploads);
        self::assertSame('2', $files['f']->getContents());
        self::assertSame('g2', $files['g']->getContents());
        self::assertEqualsCanonicalizing([$files['f']->getFile(), $files['g']->getFile()], $this->uploadedFiles());
    }

    public function testUnusableTemporaryDirectory(): void
    {
        [, $files] = BodyParser::parse(self::MULTIPART, self::multipart(self::file('f', 'f.txt', 'x')), $this->dir . '/missing');
        self::assertSame(UPLOAD_ERR_NO_TMP_DIR, $files['f']->getError());
        self::assertSame('', $files['f']->getFile());
    }

    public function testLegacyFilesRejectsWhatIsNotAnUpload(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('docs[0]: expected an UploadedFile');
        BodyParser::legacyFiles(['docs' => ['not a file']]);
    }

    // Cookie headers

    /** @dataProvider cookieHeaders */
    public function testCookies(string $header, array $expected): void
    {
        self::assertSame($expected, BodyParser::parseCookies($header));
    }

    public static function cookieHeaders(): iterable
    {
        yield 'pairs' => ['a=1; b=2;c=3', ['a' => '1', 'b' => '2', 'c' => '3']];
        yield 'first of a name wins' => ['sid=first; sid=second', ['sid' => 'first']];
        yield 'last of a nested name wins' => ['b[x]=1; b[x]=2', ['b' => ['x' => '2']]];
        yield 'array replaces scalar' => ['c=1; c[x]=2', ['c' => ['x' => '2']]];
        yield 'scalar does not replace array' => ['c[x]=1; c=2', ['c' => ['x' => '1']]];
        yield 'values rawurldecoded' => ['v=x%20y+z%3D%3B; w=%zz', ['v' => 'x y+z=;', 'w' => '%zz']];
        yield 'names kept encoded' => ['n%20m=1; o+p=2', ['n%20m' => '1', 'o+p' => '2']];
        yield 'names mangled' => ['a.b=1; c d=2; e[f=3', ['a_b' => '1', 'c_d' => '2', 'e_f' => '3']];
        yield 'brackets' => ['l[]=1; l[]=2; m[a][b]=3', ['l' => ['1', '2'], 'm' => ['a' => ['b' => '3']]]];
        yield 'empties' => [';; =x; flag; k=v=w ;  ', ['flag' => '', 'k' => 'v=w ']];
        yield 'whitespace' => ["\ta=1;\n b =2", ['a' => '1', 'b_' => '2']];
        yield 'no comma splitting' => ['a=1, b=2', ['a' => '1, b=2']];
        yield 'empty' => ['', []];
    }

    // UploadedFile

    public function testUploadedFileMovesOnce(): void
    {
        $upload = $this->upload('payload');
        self::assertFalse($upload->isMoved());
        self::assertSame('payload', $upload->getContents());

        $target = $this->dir . '/moved.txt';
        $upload->moveTo($target);
        self::assertTrue($upload->isMoved());
        self::assertSame('payload', file_get_contents($target));
        self::assertFileDoesNotExist($upload->getFile());

        try {
            $upload->moveTo($this->dir . '/again.txt');
            self::fail('moved twice');
        } catch (\RuntimeException $e) {
            self::assertStringContainsString('moved already', $e->getMessage());
        }
        $this->expectException(\RuntimeException::class);
        $upload->getContents();
    }

    public function testUploadedFileMovesToAnotherFilesystem(): void
    {
        if (!is_dir('/dev/shm') || !is_writable('/dev/shm') || stat('/dev/shm')['dev'] === stat($this->dir)['dev']) {
            self::markTestSkipped('no writable /dev/shm on another filesystem');
        }
        $upload = $this->upload('across');
        $target = '/dev/shm/' . basename($this->dir) . '.txt';
        try {
            $upload->moveTo($target);
            self::assertSame('across', file_get_contents($target));
            self::assertFileDoesNotExist($upload->getFile());
        } finally {
            if (is_file($target)) {
                unlink($target);
            }
        }
    }

    public function testUploadedFileCopiesWhereItCannotRename(): void
    {
        stream_wrapper_register('drover-memory', MemoryStream::class);
        try {
            $upload = $this->upload('wrapped');
            $upload->moveTo('drover-memory://target');
            self::assertSame('wrapped', MemoryStream::$files['drover-memory://target'] ?? null);
            self::assertFileDoesNotExist($upload->getFile());
            self::assertTrue($upload->isMoved());
        } finally {
            stream_wrapper_unregister('drover-memory');
            MemoryStream::$files = [];
        }
    }

    public function testUploadedFileReportsAFailedMove(): void
    {
        $upload = $this->upload('stays');
        try {
            $upload->moveTo($this->dir . '/no/such/dir/file.txt');
            self::fail('moved into a missing directory');
        } catch (\RuntimeException $e) {
            self::assertStringContainsString('cannot move uploaded file', $e->getMessage());
            self::assertStringContainsString('No such file or directory', $e->getMessage());
        }
        self::assertFalse($upload->isMoved());
        self::assertSame('stays', $upload->getContents());
    }

    public function testFailedUploadCannotBeReadOrMoved(): void
    {
        $upload = new UploadedFile('', 0, UPLOAD_ERR_INI_SIZE, 'big.iso', '');
        self::assertSame('big.iso', $upload->getClientFullPath());
        try {
            $upload->getContents();
            self::fail('read a failed upload');
        } catch (\RuntimeException $e) {
            self::assertStringContainsString('upload_max_filesize', $e->getMessage());
        }
        $this->expectException(\RuntimeException::class);
        $upload->moveTo($this->dir . '/big.iso');
    }

    public function testUploadedFileRejectsUnknownErrorCodes(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        new UploadedFile('', 0, 5, null, null);
    }

    // Against PHP itself

    /**
     * @dataProvider phpRequests
     * @param array<string, string> $ini
     */
    public function testMatchesPhp(string $contentType, string $body, ?string $cookie = null, array $ini = []): void
    {
        $port = $this->startServer($ini);
        $expected = $this->send($port, $contentType, $body, $cookie);

        if ($ini === []) {
            [$post, $files] = BodyParser::parse($contentType, $body, $this->uploads);
            $actual = [
                'post' => $post,
                'files' => self::withContents(BodyParser::legacyFiles($files)),
                'cookies' => BodyParser::parseCookies($cookie ?? ''),
            ];
        } else {
            $actual = $this->runChild($ini, $contentType, $body, $cookie);
        }

        // PHP leaves $_POST empty for bodies it does not parse; BodyParser says null.
        self::assertSame($expected['post'], $actual['post'] ?? [], '$_POST');
        self::assertSame($expected['files'], $actual['files'], '$_FILES');
        self::assertSame($expected['cookies'], $actual['cookies'], '$_COOKIE');
    }

    public static function phpRequests(): iterable
    {
        $d = '--' . self::B;
        $m = self::MULTIPART;

        // Fields
        yield 'nested brackets' => [$m, self::multipart(self::field('a[b][c]', '1'), self::field('a[b][d]', '2'), self::field('a[e]', '3'),
            self::field('x[y][z][w]', 'deep'), self::field('a[b]', 'replaces'), self::field('s', 'x'), self::field('s[t]', 'array wins'))];
        yield 'repeated a[]' => [$m, self::multipart(self::field('a[]', '1'), self::field('a[]', '2'), self::field('a[x]', '3'), self::field('a[]', '4'),
            self::field('b[][]', 'x'), self::field('b[][]', 'y'), self::field('c[5]', 'five'), self::field('c[]', 'six'), self::field('d[][k]', 'v'))];
        yield 'unicode names' => [$m, self::multipart(self::field('ünï[kéy]', 'välue'), self::field('名前', '値'), self::field('emoji[😀]', '🎉'))];
        yield 'empty values' => [$m, self::multipart(self::field('e', ''), self::field('e2[]', ''), self::field('e2[]', ''), self::field('z', "\r\n"))];
        yield 'mangled names' => [$m, self::multipart(self::field('  lead', '1'), self::field('a.b c', '2'), self::field('x[a', '3'),
            self::field('y[b]c[d]', '4'), self::field('z[ k]', '5'), self::field("w[\tk]", '6'), self::field('[x]', '7'),
            self::field('v[  ]', '8'), self::field('u[ ]', '9'), self::field('t[a][b.c d[e', '10'), self::field('r[x] [y]', '11'))];
        yield 'numeric names' => [$m, self::multipart(self::field('0', 'a'), self::field('01', 'b'), self::field('n[-1]', 'c'), self::field('n[1.5]', 'd'))];

        // Files
        yield 'single file' => [$m, self::multipart(self::file('f', 'f.txt', "hello\r\nworld\r\n", 'text/plain; charset=utf-8'))];
        yield 'multiple files' => [$m, self::multipart(self::file('docs[]', 'a.txt', 'A'), self::file('docs[]', 'b.bin', "\x00\xff\r\n--", 'application/octet-stream'),
            self::file('docs[]', 'c', 'C', null))];
        yield 'nested files' => [$m, self::multipart(self::file('a[b][c]', 'c.txt', 'C'), self::file('a[b][d]', 'd.txt', 'D'), self::file('x[][y]', 'y1', 'Y1'),
            self::file('x[][y]', 'y2', 'Y2'), self::file('k[5]', 'five', '5'), self::file('k[]', 'six', '6'))];
        yield 'empty file input' => [$m, self::multipart(self::file('missing', '', ''), self::file('missing2', '', 'ignored content', 'text/plain'),
            self::file('list[]', '', ''), self::file('list[]', 'l.txt', 'L'))];
        yield 'empty file' => [$m, self::multipart(self::file('e', 'e.txt', ''))];
        yield 'file paths' => [$m, self::multipart(self::file('p[]', 'C:\\dir\\x.txt', '1'), self::file('p[]', '../up/y.txt', '2'), self::file('p[]', '/abs.txt', '3'),
            self::file('p[]', 'dir/', '4'), self::file('p[]', 'mixed\\a/b\\c', '5'))];
        yield 'files and fields of the same name' => [$m, self::multipart(self::file('f', 'f.txt', 'F'), self::field('f', 'field'), self::field('g', 'field'),
            self::file('g', 'g.txt', 'G'), self::file('h[x]', 'h.txt', 'H'), self::file('h', 'h2.txt', 'H2'), self::file('i', 'i.txt', 'I'), self::file('i[x]', 'i2.txt', 'I2'))];
        yield 'anonymous files' => [$m, self::multipart(self::part('form-data; filename="anon.txt"', 'A'), self::part('form-data; filename="anon2.txt"', 'B'),
            self::file('named', 'n.txt', 'N'))];
        foreach (['x]y', 'x[a]b', 'x[a', 'x[a[b]]'] as $name) {
            // A rejected name also drops every file after it (not the fields).
            yield "rejected file name $name" => [$m, self::multipart(self::file('before', 'b', 'B'), self::file($name, 'a', '1'),
                self::field('field', 'kept'), self::file('after', 'a', '5'))];
        }
        yield 'normalized file names' => [$m, self::multipart(self::file(' t . u', 'a', '1'), self::file('v[ k]', 'a', '2'), self::file('w[ ]', 'a', '3'),
            self::file('w[ ]', 'b', '4'), self::file("y[\t k][ z]", 'a', '5'))];
        yield 'MAX_FILE_SIZE' => [$m, self::multipart(self::file('before', 'b', '1234'), self::field('max_file_size', '3'), self::file('small', 's', '123'),
            self::file('large', 'l', '1234'), self::file('empty', 'e', ''), self::field('MAX_FILE_SIZE', ' +2xyz'), self::file('two', 't', '12'),
            self::file('three', 't', '123'), self::field('MAX_FILE_SIZE', '-1'), self::file('neg', 'n', '1'), self::file('negempty', 'n', ''))];

        // Boundaries and framing
        yield 'quoted boundary' => ['multipart/form-data; boundary="weird;boundary, x"', str_replace(self::B, 'weird;boundary, x',
            self::multipart(self::field('a', '1'), self::file('f', 'f.txt', 'F')))];
        yield 'boundary parameter forms' => ['Multipart/Form-Data; charset=utf-8; BOUNDARY=' . self::B . '; x=y', self::multipart(self::field('a', '1'))];
        yield 'LF line endings' => [$m, str_replace("\r\n", "\n", self::multipart(self::field('a', "1\r\n2"), self::file('f', 'f.txt', "line1\nline2\n")))];
        yield 'preamble and epilogue' => [$m, "preamble\r\n$d-not\r\n" . self::multipart(self::field('a', '1')) . "epilogue\r\n" . self::field('after', 'x')];
        yield 'delimiter look-alikes' => [$m, self::multipart(
            self::field('inline', "x $d y"),
            self::field('prefix', "x\r\n{$d}suffix\r\nrest"),
            self::field('start', "$d\r\nContent-Disposition: form-data; name=\"smuggled\"\r\n\r\nS"),
            self::file('f', 'f.txt', "$d\r\nContent-Disposition: form-data; name=\"smuggled2\"\r\n\r\nS"),
            self::field('cr', "x\r\r\n"),
        )];
        yield 'header quirks' => [$m, "$d\r\nContent-Disposition: form-data; name=\"a\\\"b\"\r\n\r\n1\r\n"
            . "$d\r\nContent-Disposition: form-data; name='s q'\r\n\r\n2\r\n"
            . "$d\r\nContent-Disposition: form-data; name=unquoted rest\r\n\r\n3\r\n"
            . "$d\r\nContent-Disposition: form-data; NAME=\"first\"; name=\"second\"\r\n\r\n4\r\n"
            . "$d\r\nContent-Disposition: form-data; name=\"x;y\"\r\n\r\n5\r\n"
            . "$d\r\nContent-Disposition: form-data; name=\"star\"; filename*=UTF-8''x.txt\r\n\r\n6\r\n"
            . "$d\r\ncontent-disposition:form-data;name=\"tight\"\r\n\r\n7\r\n"
            . "$d\r\nContent-Disposition: form-data; name=\"fol\r\n ded\"\r\n\r\n8\r\n"
            . "$d\r\nX-First: 1\r\nContent-Disposition: form-data; name=\"late\"\r\nContent-Disposition: form-data; name=\"ignored\"\r\n\r\n9\r\n"
            . "$d\r\nContent-Disposition: form-data; name==\"eq\"; =x; filename\r\n\r\n10\r\n"
            . "$d\r\nContent-Disposition: form-data; name=\"bs\\\\x\\y\"\r\n\r\n11\r\n"
            . "$d\r\nContent-Disposition: form-data; name=\"t\"; filename=\"t.txt\"\r\nCONTENT-TYPE:   image/png  \r\n\r\n12\r\n"
            . "$d--\r\n"];
        yield 'missing Content-Disposition' => [$m, self::field('a', '1') . "$d\r\nContent-Type: text/plain\r\n\r\nxx\r\n" . self::multipart(self::field('b', '2'))];
        yield 'garbled part stops parsing' => [$m, self::field('a', '1') . self::part('form-data', 'xx') . self::multipart(self::field('b', '2'))];
        yield 'long header line' => [$m, self::multipart(self::field(str_repeat('n', 6000), '1'), self::field('after', '2'))];
        yield 'NUL bytes' => [$m, "$d\r\nContent-Disposition: form-data; name=\"a\x00b\"\r\n\r\nv\x00w\r\n$d\x00junk\r\n" . self::multipart(self::field("c\x00", '2'))];
        yield 'no closing delimiter' => [$m, self::field('a', '1') . self::field('b', 'unterminated')];
        yield 'no closing delimiter, no line feed' => [$m, self::field('a', '1') . "$d\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\nvalue"];
        yield 'cut inside the delimiter' => [$m, self::field('a', '1') . "$d\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\nvalue\r\n--drover-bou"];
        yield 'truncated file' => [$m, self::field('a', '1') . "$d\r\nContent-Disposition: form-data; name=\"f\"; filename=\"p.txt\"\r\nContent-Type: text/x\r\n\r\npartial"];
        yield 'headers never end' => [$m, self::field('a', '1') . "$d\r\nContent-Disposition: form-data; name=\"b\"\r\n"];
        yield 'missing boundary' => ['multipart/form-data', self::multipart(self::field('a', '1'))];
        yield 'unterminated quoted boundary' => ['multipart/form-data; boundary="' . self::B, self::multipart(self::field('a', '1'))];
        yield 'empty body' => [$m, ''];

        // application/x-www-form-urlencoded
        yield 'urlencoded' => [self::FORM, 'a[]=1&a[]=2&b[x][y]=3&c.d=4&e+f=5&g[=6&h%5Bi%5D=7&&=8&j&k=%zz+%41&l[%09]=9&m[%20%20]=10&n[x]y=11'];

        // Cookie headers
        yield 'cookie duplicates' => ['text/plain', '', 'a=1; a=2; b[x]=1; b[x]=2; c=1; c[x]=2; d[x]=1; d=2; e[]=1; e[]=2'];
        yield 'cookie encoding' => ['text/plain', '', 'v=x%20y+z%3D%3B; w=%zz; n%20m=1; o+p=2; q=%00%FF; r="quoted"'];
        yield 'cookie brackets' => ['text/plain', '', 'a[b]=1; a[c][d]=2; e[f=3; g[h][i=4; j[ ]=5; k[  ]=6; l[]x=7; [m]=8'];
        yield 'cookie spacing and empties' => ['text/plain', '', ";; =x;   flag; k=v=w ;  a b =1;\tt=2; , c=3"];

        // php.ini limits
        yield 'upload limits' => [$m, self::multipart(self::file('big', 'big.txt', '123456'), self::file('none', '', ''), self::file('ok', 'ok.txt', '12345'),
            self::file('over', 'over.txt', '1'), self::field('still', 'parsed'), self::file('over2', '', '')), null, ['upload_max_filesize' => '5', 'max_file_uploads' => '2']];
        yield 'max_input_vars' => [$m, self::multipart(self::field('a', '1'), self::field('b', '2'), self::file('f', 'f', 'F'), self::field('c', '3'),
            self::field('d', '4'), self::field('MAX_FILE_SIZE', '1'), self::file('g', 'g', 'GG')), 'a=1; =2; b=2; c=3; d=4; e=5', ['max_input_vars' => '3']];
        yield 'max_input_vars, urlencoded' => [self::FORM, '&&a=1&b=2&c=3&d=4', null, ['max_input_vars' => '3']];
        yield 'max_input_nesting_level' => [$m, self::multipart(self::field('a[b][c]', '1'), self::field('a[x]', '2'), self::field('b[c][d][e]', '3'),
            self::field('b[z]', 'kept?'), self::file('f[x]', 'f', 'F'), self::file('g[x][y]', 'g', 'G'), self::file('h', 'h', 'H')),
            'a[b][c]=1; b[c][d][e]=2', ['max_input_nesting_level' => '2']];
        yield 'max_multipart_body_parts' => [$m, self::multipart(self::field('a', '1'), self::part('form-data', 'not counted') ,
            "$d\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n", self::field('b', '2'), self::file('f', 'f', 'F'), self::field('c', '3')),
            null, ['max_multipart_body_parts' => '3']];
        yield 'post_max_size' => [$m, self::multipart(self::field('a', str_repeat('x', 300))), 'still=parsed', ['post_max_size' => '200']];
        yield 'file_uploads off' => [$m, self::multipart(self::field('a', '1'), self::file('f', 'f', 'F')), null, ['file_uploads' => '0']];
    }

    // Helpers

    private static function part(string $disposition, string $content, array $headers = []): string
    {
        $head = "Content-Disposition: $disposition\r\n";
        foreach ($headers as $header) {
            $head .= "$header\r\n";
        }
        return '--' . self::B . "\r\n$head\r\n$content\r\n";
    }

    private static function field(string $name, string $value): string
    {
        return self::part("form-data; name=\"$name\"", $value);
    }

    private static function file(string $name, string $filename, string $content, ?string $type = 'text/plain'): string
    {
        return self::part("form-data; name=\"$name\"; filename=\"$filename\"", $content, $type === null ? [] : ["Content-Type: $type"]);
    }

    private static function multipart(string ...$parts): string
    {
        return implode('', $parts) . '--' . self::B . "--\r\n";
    }

    /** An upload in the test's upload directory, as BodyParser would make it. */
    private function upload(string $content): UploadedFile
    {
        $path = tempnam($this->uploads, 'drover-upload-');
        file_put_contents($path, $content);
        return new UploadedFile($path, strlen($content), UPLOAD_ERR_OK, 'c.txt', 'text/plain');
    }

    /** @return list<string> the files in the upload directory */
    private function uploadedFiles(): array
    {
        return glob($this->uploads . '/*') ?: [];
    }

    private static function flatten(array $tree, \Closure $filter): array
    {
        $out = [];
        array_walk_recursive($tree, static function (mixed $leaf) use (&$out, $filter): void {
            if ($filter($leaf)) {
                $out[] = $leaf;
            }
        });
        return $out;
    }

    /** What WITH_CONTENTS does, in this process. */
    private static function withContents(array $files): array
    {
        if (!function_exists('drover_with_contents')) {
            eval(self::WITH_CONTENTS);
        }
        return drover_with_contents($files);
    }

    /**
     * `-d` options for a PHP process: this process's limits, then $ini.
     *
     * @param array<string, string> $ini
     * @return list<string>
     */
    private static function iniOptions(array $ini): array
    {
        $options = [];
        foreach (self::SETTINGS as $name) {
            $ini += [$name => (string) ini_get($name)];
        }
        foreach ($ini as $name => $value) {
            $options[] = '-d';
            $options[] = "$name=$value";
        }
        return $options;
    }

    /**
     * Starts `php -S` with a router printing what PHP parsed; returns its port.
     *
     * @param array<string, string> $ini
     */
    private function startServer(array $ini): int
    {
        $router = $this->dir . '/router.php';
        file_put_contents($router, sprintf(self::ROUTER, self::WITH_CONTENTS));
        $options = self::iniOptions($ini + ['display_errors' => '0', 'log_errors' => '0']);
        for ($attempt = 1; ; $attempt++) {
            $port = self::freePort();
            $log = "{$this->dir}/server-$attempt.log";
            $process = proc_open([PHP_BINARY, ...$options, '-S', "127.0.0.1:$port", $router],
                [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'a'], 2 => ['file', $log, 'a']], $pipes, $this->dir);
            self::assertIsResource($process, 'cannot start php -S');
            $deadline = microtime(true) + 10;
            do {
                usleep(10_000);
                $output = (string) file_get_contents($log);
                if (str_contains($output, "(http://127.0.0.1:$port) started")) {
                    $this->server = $process;
                    return $port;
                }
            } while (proc_get_status($process)['running'] && microtime(true) < $deadline);
            proc_terminate($process);
            proc_close($process);
            if ($attempt === 3) {
                self::fail("php -S did not start:\n$output");
            }
        }
    }

    private static function freePort(): int
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0', $errno, $error);
        self::assertIsResource($socket, "no free port: $error");
        $name = stream_socket_get_name($socket, false);
        fclose($socket);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    /** Sends a POST request to `php -S` and returns what the router printed. */
    private function send(int $port, string $contentType, string $body, ?string $cookie): array
    {
        $socket = stream_socket_client("tcp://127.0.0.1:$port", $errno, $error, 5);
        self::assertIsResource($socket, "cannot connect to php -S: $error");
        stream_set_timeout($socket, 10);
        $request = "POST / HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nConnection: close\r\nContent-Type: $contentType\r\n"
            . 'Content-Length: ' . strlen($body) . "\r\n" . ($cookie === null ? '' : "Cookie: $cookie\r\n") . "\r\n" . $body;
        for ($written = 0; $written < strlen($request); $written += $n) {
            $n = fwrite($socket, substr($request, $written));
            self::assertNotFalse($n, 'cannot write the request');
        }
        $response = stream_get_contents($socket);
        fclose($socket);
        [$head, $payload] = explode("\r\n\r\n", (string) $response, 2) + [1 => ''];
        self::assertStringStartsWith('HTTP/1.1 200', $head, "php -S answered:\n$response");
        $result = unserialize($payload, ['allowed_classes' => false]);
        self::assertIsArray($result, "php -S answered:\n$response");
        return $result;
    }

    /**
     * Runs BodyParser in a child PHP with the given php.ini settings.
     *
     * @param array<string, string> $ini
     */
    private function runChild(array $ini, string $contentType, string $body, ?string $cookie): array
    {
        $script = $this->dir . '/child.php';
        $input = $this->dir . '/child.input';
        file_put_contents($script, sprintf(self::CHILD, self::WITH_CONTENTS));
        file_put_contents($input, serialize([$contentType, $body, $cookie, $this->uploads]));
        $process = proc_open([PHP_BINARY, ...self::iniOptions($ini), $script, dirname(__DIR__, 2) . '/autoload.php', $input],
            [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['file', "{$this->dir}/child.err", 'w']], $pipes);
        self::assertIsResource($process, 'cannot start php');
        $output = stream_get_contents($pipes[1]);
        fclose($pipes[1]);
        $status = proc_close($process);
        $errors = (string) file_get_contents("{$this->dir}/child.err");
        self::assertSame([0, ''], [$status, $errors], "the child PHP failed:\n$errors$output");
        return unserialize($output, ['allowed_classes' => false]);
    }

    private static function removeTree(string $path): void
    {
        if (is_dir($path) && !is_link($path)) {
            foreach (scandir($path) as $entry) {
                if ($entry !== '.' && $entry !== '..') {
                    self::removeTree("$path/$entry");
                }
            }
            rmdir($path);
        } elseif (file_exists($path) || is_link($path)) {
            unlink($path);
        }
    }
}

/** A write-only stream wrapper keeping files in memory, which cannot rename. */
final class MemoryStream
{
    /** @var array<string, string> */
    public static array $files = [];

    /** @var resource|null */
    public $context;

    private string $path = '';

    public function stream_open(string $path, string $mode, int $options, ?string &$openedPath): bool
    {
        $this->path = $path;
        self::$files[$path] = '';
        return true;
    }

    public function stream_write(string $data): int
    {
        self::$files[$this->path] .= $data;
        return strlen($data);
    }

    public function stream_close(): void
    {
    }

    public function url_stat(string $path, int $flags): array|false
    {
        return isset(self::$files[$path]) ? ['size' => strlen(self::$files[$path])] : false;
    }
}
