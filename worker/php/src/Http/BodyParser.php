<?php

declare(strict_types=1);

namespace Drover\Http;

/**
 * Parses request bodies and Cookie headers into what PHP's SAPI layer would
 * put in $_POST, $_FILES and $_COOKIE.
 *
 * A resident worker receives requests as data, so PHP never parses them for
 * it. This class does it in PHP, following php-src 8.2 (main/rfc1867.c for
 * multipart bodies, main/php_variables.c for names and cookies) closely
 * enough that applications see what they would under php-fpm, quirks
 * included: "a.b" becomes "a_b", "a[]" appends, the first of two cookies of
 * the same name wins, a file field left empty is an UPLOAD_ERR_NO_FILE
 * upload, a body without its closing boundary keeps the parts before it.
 * The php.ini limits PHP applies are applied too: post_max_size,
 * max_input_vars, max_input_nesting_level, file_uploads, max_file_uploads,
 * upload_max_filesize and max_multipart_body_parts. Unlike PHP, hitting a
 * limit or meeting a malformed body raises no warning: what is beyond the
 * limit or unreadable is left out, silently.
 *
 *     [$post, $files] = BodyParser::parse($contentType, $body);
 *     $_FILES = BodyParser::legacyFiles($files);
 *     $_COOKIE = BodyParser::parseCookies($cookieHeader);
 */
final class BodyParser
{
    /** Characters C's isspace() accepts, which php-src uses for "whitespace". */
    private const C_SPACE = " \t\n\v\f\r";

    /** php-src's multipart read buffer size (FILLUNIT): longer header lines are cut there. */
    private const FILL_UNIT = 5 * 1024;

    private const TEMP_PREFIX = 'drover-upload-';

    /** Uploads are written in pieces this large, so a big one is not copied in memory whole. */
    private const WRITE_CHUNK = 1 << 20;

    /** The keys of a $_FILES entry, in PHP's order. */
    private const LEGACY_KEYS = ['name', 'full_path', 'type', 'tmp_name', 'error', 'size'];

    /** Read position in the multipart body. */
    private int $pos = 0;

    private readonly int $length;

    /** A line holding only this starts a part: "--" and the boundary. */
    private readonly string $delimiter;

    /** A part's content ends where this starts: a line feed, "--" and the boundary. */
    private readonly string $contentEnd;

    private readonly int $lineLimit;

    /** @var list<UploadedFile> the uploads given a temporary file */
    private array $written = [];

    private function __construct(private readonly string $body, string $boundary)
    {
        $this->length = strlen($body);
        $this->delimiter = '--' . $boundary;
        $this->contentEnd = "\n--" . $boundary;
        $this->lineLimit = max(self::FILL_UNIT, strlen($boundary) + 6);
    }

    /**
     * Parses a request body by its Content-Type.
     *
     * - application/x-www-form-urlencoded: the fields as $_POST has them; no files.
     * - multipart/form-data: the fields as $_POST has them, and the uploads as
     *   a tree of UploadedFile keyed as the form names them ("avatar" → the
     *   file, "docs[]" → a list, "a[b]" → nested arrays). Uploads are written
     *   to temporary files named drover-upload-* in $tmpDir (default: php.ini's
     *   upload_tmp_dir, else the system's temporary directory); the caller
     *   removes those the handler did not move.
     * - application/json and any type ending in +json: json_decode($body, true),
     *   null when the body is not valid JSON; no files.
     * - anything else: null, no files.
     *
     * A form body larger than post_max_size gives no fields and no files, as in PHP.
     *
     * @return array{0: mixed, 1: array<array-key, UploadedFile|array>} the parsed body and the uploads
     */
    public static function parse(string $contentType, string $body, ?string $tmpDir = null): array
    {
        $mediaType = self::mediaType($contentType);
        if ($mediaType === 'application/x-www-form-urlencoded') {
            return [self::exceedsPostMaxSize($body) ? [] : self::parseUrlEncoded($body), []];
        }
        if ($mediaType === 'multipart/form-data') {
            $boundary = self::boundary($contentType);
            if ($boundary === null || self::exceedsPostMaxSize($body)) {
                return [[], []];
            }
            return (new self($body, $boundary))->parseMultipart($tmpDir ?? self::defaultTempDir());
        }
        if ($mediaType === 'application/json' || str_ends_with($mediaType, '+json')) {
            return [json_decode($body, true), []];
        }
        return [null, []];
    }

    /**
     * Turns the upload tree parse() returns into PHP's $_FILES layout: for a
     * field "docs[]" the list goes inside each key, as in
     * $_FILES['docs']['name'][0] and $_FILES['docs']['tmp_name'][0].
     *
     * @param array<array-key, UploadedFile|array> $files
     * @return array<array-key, array{name: mixed, full_path: mixed, type: mixed, tmp_name: mixed, error: mixed, size: mixed}>
     */
    public static function legacyFiles(array $files): array
    {
        $legacy = [];
        foreach ($files as $field => $node) {
            foreach (self::LEGACY_KEYS as $key) {
                $legacy[$field][$key] = self::legacyLeaves($node, $key, (string) $field);
            }
        }
        return $legacy;
    }

    /**
     * Parses a Cookie header as PHP fills $_COOKIE: pairs split on ";",
     * names taken as they are (not URL-decoded; "a.b" and "a b" become "a_b",
     * brackets make arrays), values URL-decoded with rawurldecode(), and of
     * two cookies of the same name the first kept.
     *
     * @return array<array-key, string|array>
     */
    public static function parseCookies(string $cookieHeader): array
    {
        $maxVars = self::iniInt('max_input_vars');
        $maxNesting = self::iniInt('max_input_nesting_level');
        $cookies = [];
        $count = 0;
        foreach (explode(';', self::cString($cookieHeader)) as $pair) {
            $pair = ltrim($pair, self::C_SPACE);
            if ($pair === '' || $pair[0] === '=') {
                continue;
            }
            if (++$count > $maxVars) {
                break;
            }
            $eq = strpos($pair, '=');
            if ($eq === false) {
                self::register($cookies, $pair, '', $maxNesting, true);
            } else {
                self::register($cookies, substr($pair, 0, $eq), rawurldecode(substr($pair, $eq + 1)), $maxNesting, true);
            }
        }
        return $cookies;
    }

    /** The media type PHP dispatches on: lower-case, cut at the first ';', ',' or space. */
    private static function mediaType(string $contentType): string
    {
        $contentType = ltrim($contentType, self::C_SPACE);
        return strtolower(substr($contentType, 0, strcspn($contentType, ';, ')));
    }

    /** The boundary parameter as PHP reads it, or null where PHP gives up on the body. */
    private static function boundary(string $contentType): ?string
    {
        $contentType = self::cString($contentType);
        // PHP takes the first "boundary" (case-sensitive first, then not)
        // and what follows its first "=", without a parameter parser.
        $at = strpos($contentType, 'boundary');
        if ($at === false) {
            $at = stripos($contentType, 'boundary');
        }
        $eq = $at === false ? false : strpos($contentType, '=', $at);
        if ($eq === false) {
            return null;
        }
        $boundary = substr($contentType, $eq + 1);
        if (str_starts_with($boundary, '"')) {
            $close = strpos($boundary, '"', 1);
            return $close === false ? null : substr($boundary, 1, $close - 1);
        }
        return substr($boundary, 0, strcspn($boundary, ',;'));
    }

    private static function exceedsPostMaxSize(string $body): bool
    {
        $max = self::iniInt('post_max_size');
        return $max > 0 && strlen($body) > $max;
    }

    /** The fields of an application/x-www-form-urlencoded body, as php_std_post_handler() reads them. */
    private static function parseUrlEncoded(string $body): array
    {
        $maxVars = self::iniInt('max_input_vars');
        $maxNesting = self::iniInt('max_input_nesting_level');
        $fields = [];
        $length = strlen($body);
        for ($pos = 0, $count = 0; $pos < $length;) {
            $end = $pos + strcspn($body, '&', $pos);
            $eq = $pos + strcspn($body, '=', $pos, $end - $pos);
            $name = urldecode(substr($body, $pos, $eq - $pos));
            self::register($fields, $name, $eq < $end ? urldecode(substr($body, $eq + 1, $end - $eq - 1)) : '', $maxNesting);
            $pos = $end + 1;
            // PHP stores the variable that crosses the limit, then stops.
            if (++$count > $maxVars) {
                break;
            }
        }
        return $fields;
    }

    /**
     * The fields and uploads of the multipart body, read part by part as
     * rfc1867_post_handler() does.
     *
     * @return array{0: array, 1: array}
     */
    private function parseMultipart(string $tmpDir): array
    {
        $maxVars = self::iniInt('max_input_vars');
        $maxNesting = self::iniInt('max_input_nesting_level');
        $fileUploads = self::iniBool('file_uploads');
        $uploadsLeft = self::iniInt('max_file_uploads');
        $uploadMaxSize = self::iniInt('upload_max_filesize');
        $partsLeft = self::iniInt('max_multipart_body_parts');
        if ($partsLeft < 0) {
            $partsLeft = $maxVars + $uploadsLeft;
        }
        $fields = $files = [];
        $fieldCount = 0;
        $maxFileSize = 0;
        $anonymous = 0;
        // Once one file part is skipped, php-src skips every file part after
        // it too: its flag is never reset. Fields are still read.
        $skipFiles = false;

        while ($this->pos < $this->length) {
            $headers = $this->readHeaders();
            if ($headers === null) {
                break;
            }
            $disposition = self::header($headers, 'Content-Disposition');
            if ($disposition === null) {
                continue;
            }
            if (--$partsLeft < 0) {
                break;
            }
            [$name, $filename] = self::dispositionParameters($disposition);

            if ($filename === null && $name !== null) {
                [$start, $end] = $this->readContent();
                $value = substr($this->body, $start, $end - $start);
                if (++$fieldCount <= $maxVars) {
                    self::register($fields, $name, $value, $maxNesting);
                }
                // A form's hidden MAX_FILE_SIZE field caps the files after it.
                if (strcasecmp($name, 'MAX_FILE_SIZE') === 0) {
                    $maxFileSize = self::strtoll($value);
                }
                continue;
            }

            $skipFiles = $skipFiles || !$fileUploads || $uploadsLeft <= 0;
            if ($name === null && $filename === null) {
                break; // PHP: "File Upload Mime headers garbled"
            }
            $name ??= (string) $anonymous++;
            // Names with brackets that do not nest cleanly ("a]", "a[b]c")
            // are dropped rather than repaired.
            $skipFiles = $skipFiles || !self::isWellFormedFileName($name);
            if ($skipFiles) {
                continue; // its content is skipped on the way to the next delimiter
            }

            $error = UPLOAD_ERR_OK;
            $path = '';
            $size = 0;
            if ($filename === '') {
                $error = UPLOAD_ERR_NO_FILE; // a file input left empty; its content is not read
            } else {
                [$start, $end, $complete] = $this->readContent();
                $uploadsLeft--;
                [$error, $path] = $this->store($start, $end - $start, $complete, $tmpDir, $uploadMaxSize, $maxFileSize);
                $size = $error === UPLOAD_ERR_OK ? $end - $start : 0;
            }
            $type = $error === UPLOAD_ERR_OK ? (self::header($headers, 'Content-Type') ?? '') : '';
            $upload = new UploadedFile($path, $size, $error, self::basename($filename),
                substr($type, 0, strcspn($type, ';')), $filename);
            if ($path !== '') {
                $this->written[] = $upload;
            }
            // $_FILES nests one level deeper than the field ($_FILES['a']['name']['b']
            // for "a[b]"), and PHP's nesting limit counts that level too.
            if ($maxNesting > 0) {
                self::register($files, self::normalizeFileName($name), $upload, $maxNesting - 1);
            }
        }

        $this->removeUnreachable($files);
        return [$fields, $files];
    }

    /**
     * Writes an upload's content to a temporary file, checking the size
     * limits and completeness in PHP's order.
     *
     * @return array{0: int, 1: string} the UPLOAD_ERR_* code and the path ('' unless UPLOAD_ERR_OK)
     */
    private function store(int $start, int $size, bool $complete, string $tmpDir, int $uploadMaxSize, int $maxFileSize): array
    {
        $path = self::quietly(static fn () => is_dir($tmpDir) && is_writable($tmpDir) ? tempnam($tmpDir, self::TEMP_PREFIX) : false);
        if (!is_string($path)) {
            return [UPLOAD_ERR_NO_TMP_DIR, ''];
        }
        if ($uploadMaxSize > 0 && $size > $uploadMaxSize) {
            $error = UPLOAD_ERR_INI_SIZE;
        } elseif ($maxFileSize !== 0 && $size > 0 && $size > $maxFileSize) {
            $error = UPLOAD_ERR_FORM_SIZE;
        } elseif (!$this->write($path, $start, $size)) {
            $error = UPLOAD_ERR_CANT_WRITE;
        } elseif (!$complete) {
            $error = UPLOAD_ERR_PARTIAL; // PHP writes it, then throws it away
        } else {
            return [UPLOAD_ERR_OK, $path];
        }
        self::quietly(static fn () => unlink($path));
        return [$error, ''];
    }

    private function write(string $path, int $start, int $size): bool
    {
        return self::quietly(function () use ($path, $start, $size): bool {
            $handle = fopen($path, 'wb');
            if ($handle === false) {
                return false;
            }
            $ok = true;
            for ($offset = 0; $ok && $offset < $size; $offset += self::WRITE_CHUNK) {
                $chunk = substr($this->body, $start + $offset, min(self::WRITE_CHUNK, $size - $offset));
                $ok = fwrite($handle, $chunk) === strlen($chunk);
            }
            return fclose($handle) && $ok;
        });
    }

    /**
     * Deletes the temporary files of uploads that did not make it into the
     * tree: a later field of the same name replaced them, or the nesting
     * limit removed them. PHP deletes those at the end of the request.
     */
    private function removeUnreachable(array $files): void
    {
        $reachable = [];
        array_walk_recursive($files, static function (UploadedFile $upload) use (&$reachable): void {
            $reachable[spl_object_id($upload)] = true;
        });
        foreach ($this->written as $upload) {
            if (!isset($reachable[spl_object_id($upload)])) {
                self::quietly(static fn () => unlink($upload->getFile()));
            }
        }
    }

    /**
     * The next line, without its line feed and a carriage return before it;
     * null at the end of the body, where a last line without a line feed is
     * not a line. As in php-src, a line is at most one read buffer long.
     */
    private function nextLine(): ?string
    {
        $window = min($this->length - $this->pos, $this->lineLimit);
        $span = strcspn($this->body, "\n", $this->pos, $window);
        if ($span < $window) {
            $line = substr($this->body, $this->pos, $span);
            $this->pos += $span + 1;
            return str_ends_with($line, "\r") ? substr($line, 0, -1) : $line;
        }
        if ($window < $this->lineLimit) {
            return null;
        }
        $this->pos += $window;
        return substr($this->body, $this->pos - $window, $window);
    }

    /**
     * Skips to the line after the next delimiter line and reads the part's
     * headers, up to an empty line or the end of the body.
     *
     * @return list<array{0: string, 1: string}>|null name and value of each header; null when no delimiter is left
     */
    private function readHeaders(): ?array
    {
        do {
            $line = $this->nextLine();
            if ($line === null) {
                return null;
            }
        } while (self::cString($line) !== $this->delimiter);

        $headers = [];
        $name = $value = null;
        while (($line = $this->nextLine()) !== null && ($line = self::cString($line)) !== '') {
            $colon = strspn($line, self::C_SPACE, 0, 1) === 0 ? strpos($line, ':') : false;
            if ($colon !== false) {
                if ($name !== null) {
                    $headers[] = [$name, $value];
                }
                $name = substr($line, 0, $colon);
                $value = ltrim(substr($line, $colon + 1), self::C_SPACE);
            } elseif ($value !== null) {
                $value .= $line; // a folded line continues the header before it, as is
            }
        }
        if ($name !== null) {
            $headers[] = [$name, $value];
        }
        return $headers;
    }

    /** The value of the first header named $name (case-insensitive), or null. */
    private static function header(array $headers, string $name): ?string
    {
        foreach ($headers as [$key, $value]) {
            if (strcasecmp($key, $name) === 0) {
                return $value;
            }
        }
        return null;
    }

    /**
     * Reads a part's content: up to the next line feed followed by the
     * delimiter, minus a carriage return before it. Without a closing
     * delimiter the content runs to the end of the body, except for a tail
     * that could begin one ("\n--bou"); $complete tells which happened.
     *
     * @return array{0: int, 1: int, 2: bool} start and end offsets, and whether a delimiter followed
     */
    private function readContent(): array
    {
        $start = $this->pos;
        $bound = strpos($this->body, $this->contentEnd, $start);
        $complete = $bound !== false;
        if (!$complete) {
            $bound = null;
            $tail = max($start, $this->length - strlen($this->contentEnd) + 1);
            while (($lf = strpos($this->body, "\n", $tail)) !== false) {
                if (str_starts_with($this->contentEnd, substr($this->body, $lf))) {
                    $bound = $lf;
                    break;
                }
                $tail = $lf + 1;
            }
        }
        $end = $bound ?? $this->length;
        if ($bound !== null && $end > $start && $this->body[$end - 1] === "\r") {
            $end--;
        }
        $this->pos = $end;
        return [$start, $end, $complete];
    }

    /**
     * The name and filename parameters of a Content-Disposition value (null
     * when absent), unquoted as php-src does; other parameters, including
     * filename*, are ignored.
     *
     * @return array{0: ?string, 1: ?string}
     */
    private static function dispositionParameters(string $value): array
    {
        $name = $filename = null;
        $rest = ltrim($value, self::C_SPACE);
        while ($rest !== '') {
            $pair = self::getWord($rest, ';');
            $rest = ltrim($rest, self::C_SPACE);
            if (!str_contains($pair, '=')) {
                continue;
            }
            $key = self::getWord($pair, '=');
            if (strcasecmp($key, 'name') === 0) {
                $name = self::unquote($pair);
            } elseif (strcasecmp($key, 'filename') === 0) {
                $filename = self::unquote($pair);
            }
        }
        return [$name, $filename];
    }

    /**
     * Takes from $line the text before the first $stop outside quotes, and
     * removes it and the $stop characters after it from $line
     * (php_ap_getword()).
     */
    private static function getWord(string &$line, string $stop): string
    {
        $length = strlen($line);
        $pos = 0;
        while ($pos < $length && $line[$pos] !== $stop) {
            $quote = $line[$pos++];
            if ($quote !== '"' && $quote !== "'") {
                continue;
            }
            while ($pos < $length && $line[$pos] !== $quote) {
                $pos += $line[$pos] === '\\' && $pos + 1 < $length && $line[$pos + 1] === $quote ? 2 : 1;
            }
            if ($pos < $length) {
                $pos++;
            }
        }
        $word = substr($line, 0, $pos);
        $line = substr($line, $pos + strspn($line, $stop, $pos));
        return $word;
    }

    /**
     * A parameter value: up to the closing quote when quoted (backslash
     * escapes the quote and itself), else up to whitespace
     * (php_ap_getword_conf()).
     */
    private static function unquote(string $value): string
    {
        $value = ltrim($value, self::C_SPACE);
        if ($value === '') {
            return '';
        }
        $quote = $value[0] === '"' || $value[0] === "'" ? $value[0] : null;
        if ($quote !== null) {
            $value = substr($value, 1);
        } else {
            $value = substr($value, 0, strcspn($value, self::C_SPACE));
        }
        $out = '';
        for ($i = 0, $length = strlen($value); $i < $length && $value[$i] !== $quote; $i++) {
            $next = $value[$i + 1] ?? '';
            if ($value[$i] === '\\' && ($next === '\\' || ($quote !== null && $next === $quote))) {
                $i++;
            }
            $out .= $value[$i];
        }
        return $out;
    }

    /** The file name without directories, either separator counting (php_ap_basename()). */
    private static function basename(string $filename): string
    {
        $slash = strrpos($filename, '/');
        $backslash = strrpos($filename, '\\');
        return substr($filename, max($slash === false ? -1 : $slash, $backslash === false ? -1 : $backslash) + 1);
    }

    /** Whether every ']' in $name closes a '[' and is followed by '[' or nothing. */
    private static function isWellFormedFileName(string $name): bool
    {
        $depth = 0;
        for ($i = 0, $length = strlen($name); $i < $length; $i++) {
            if ($name[$i] === '[') {
                $depth++;
            } elseif ($name[$i] === ']') {
                if (--$depth < 0 || ($i + 1 < $length && $name[$i + 1] !== '[')) {
                    return false;
                }
            }
        }
        return $depth === 0;
    }

    /**
     * A file field's name as PHP registers it in $_FILES: leading spaces
     * dropped, spaces and dots before the first '[' turned into '_', and
     * whitespace at the start of each index removed
     * (normalize_protected_variable()).
     */
    private static function normalizeFileName(string $name): string
    {
        $name = ltrim($name, ' ');
        $bracket = strpos($name, '[');
        if ($bracket === false) {
            return strtr($name, ' .', '__');
        }
        $out = strtr(substr($name, 0, $bracket), ' .', '__');
        $length = strlen($name);
        for ($pos = $bracket; $pos < $length && $name[$pos] === '[';) {
            $pos += 1 + strspn($name, " \r\n\t", $pos + 1);
            $close = strpos($name, ']', $pos);
            $end = $close === false ? $length : $close + 1;
            $out .= '[' . substr($name, $pos, $end - $pos);
            $pos = $end;
        }
        return $out;
    }

    /**
     * Stores $value under the variable name $name in $vars, as
     * php_register_variable_ex() does: leading spaces dropped, spaces and
     * dots in the top-level name turned into '_', "[key]" nesting arrays,
     * "[]" appending, a '[' without ']' turned into '_' at the top level and
     * ignored below it, anything after a ']' not followed by '[' ignored.
     * A name nested deeper than $maxNesting removes the whole top-level
     * variable. With $keepFirst (cookies), an existing top-level value is
     * not replaced.
     */
    private static function register(array &$vars, string $name, mixed $value, int $maxNesting, bool $keepFirst = false): void
    {
        $name = ltrim(self::cString($name), ' ');
        $length = strlen($name);
        $bracket = strpos($name, '[');
        $top = strtr($bracket === false ? $name : substr($name, 0, $bracket), ' .', '__');
        if ($top === '') {
            return;
        }

        $table = &$vars;
        $key = $top; // null: append
        $atTop = true;
        for ($pos = $bracket, $level = 1; $pos !== false && $pos < $length && $name[$pos] === '['; $level++) {
            if ($level > $maxNesting) {
                unset($vars[$top]);
                return;
            }
            $start = ++$pos;
            if ($pos < $length && strspn($name, self::C_SPACE, $pos, 1) === 1) {
                $pos++;
            }
            if ($pos < $length && $name[$pos] === ']') {
                $index = null;
            } else {
                $close = strpos($name, ']', $pos);
                if ($close === false) {
                    // Not an index after all: PHP names cannot hold '[', so at the
                    // top level it becomes '_'; deeper, the rest is dropped.
                    if ($atTop) {
                        $key = $top . '_' . strtr(substr($name, $start), ' .[', '___');
                    }
                    break;
                }
                $index = substr($name, $start, $close - $start);
                $pos = $close;
            }

            if ($key === null) {
                if (array_key_exists(PHP_INT_MAX, $table)) {
                    return; // no next index to append at, as in PHP
                }
                $table[] = [];
                $key = array_key_last($table);
            } elseif (!is_array($table[$key] ?? null)) {
                $table[$key] = [];
            }
            $table = &$table[$key];
            $key = $index;
            $atTop = false;
            $pos++;
        }

        if ($key === null) {
            if (!array_key_exists(PHP_INT_MAX, $table)) {
                $table[] = $value;
            }
        } elseif (!$keepFirst || !$atTop || !array_key_exists($key, $table)) {
            $table[$key] = $value;
        }
    }

    /**
     * Maps an upload tree to one $_FILES key of each upload.
     *
     * @param UploadedFile|array $node
     */
    private static function legacyLeaves(mixed $node, string $key, string $path): mixed
    {
        if (is_array($node)) {
            $out = [];
            foreach ($node as $k => $child) {
                $out[$k] = self::legacyLeaves($child, $key, "{$path}[$k]");
            }
            return $out;
        }
        if (!$node instanceof UploadedFile) {
            throw new \InvalidArgumentException("$path: expected an UploadedFile or an array of them, got " . get_debug_type($node));
        }
        return match ($key) {
            'name' => $node->getClientFilename() ?? '',
            'full_path' => $node->getClientFullPath() ?? '',
            'type' => $node->getClientMediaType() ?? '',
            'tmp_name' => $node->getFile(),
            'error' => $node->getError(),
            'size' => $node->getSize(),
        };
    }

    /** $value up to its first NUL byte, as C code sees a string. */
    private static function cString(string $value): string
    {
        $nul = strpos($value, "\0");
        return $nul === false ? $value : substr($value, 0, $nul);
    }

    /** C's strtoll($value, NULL, 10): leading whitespace, a sign and digits; 0 when none; clamped. */
    private static function strtoll(string $value): int
    {
        if (preg_match('/\A[ \t\n\v\f\r]*([+-]?)0*(\d*)/', $value, $m) !== 1 || $m[2] === '') {
            return 0;
        }
        $negative = $m[1] === '-';
        $limit = $negative ? '9223372036854775808' : (string) PHP_INT_MAX;
        if (strlen($m[2]) > strlen($limit) || (strlen($m[2]) === strlen($limit) && strcmp($m[2], $limit) >= 0)) {
            return $negative ? PHP_INT_MIN : PHP_INT_MAX;
        }
        return $negative ? -(int) $m[2] : (int) $m[2];
    }

    /** A php.ini integer setting, with its K/M/G suffix applied. */
    private static function iniInt(string $name): int
    {
        $value = ini_get($name);
        return $value === false || $value === '' ? 0 : ini_parse_quantity($value);
    }

    /** A php.ini boolean setting, read as PHP reads it ("on", "yes", "true" or a non-zero number). */
    private static function iniBool(string $name): bool
    {
        $value = strtolower((string) ini_get($name));
        return in_array($value, ['on', 'yes', 'true'], true) || (int) $value !== 0;
    }

    /** Where PHP would put uploads: upload_tmp_dir when usable, else the system's temporary directory. */
    private static function defaultTempDir(): string
    {
        $dir = (string) ini_get('upload_tmp_dir');
        return $dir !== '' && is_dir($dir) && is_writable($dir) ? $dir : sys_get_temp_dir();
    }

    /** Runs $operation with PHP's warnings silenced; failures show in its result. */
    private static function quietly(\Closure $operation): mixed
    {
        set_error_handler(static fn (): bool => true);
        try {
            return $operation();
        } finally {
            restore_error_handler();
        }
    }
}
