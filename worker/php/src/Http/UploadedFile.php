<?php

declare(strict_types=1);

namespace Drover\Http;

/**
 * A file received in a multipart/form-data body: one leaf of PHP's $_FILES.
 *
 * BodyParser writes the file to a temporary path, as PHP does; the handler
 * reads it or moves it away, and whatever is left is removed after the
 * request (Request::cleanup). The class implements no PSR interface: the
 * PSR-7 adapter wraps it.
 *
 *     $f = $request->file('avatar');
 *     if ($f !== null && $f->getError() === UPLOAD_ERR_OK) {
 *         $f->moveTo('/srv/avatars/' . bin2hex(random_bytes(8)));
 *     }
 */
final class UploadedFile
{
    private bool $moved = false;

    /**
     * @param string      $file            the temporary file ('' when the upload failed)
     * @param int         $size            its size in bytes (0 when the upload failed)
     * @param int         $error           one of the UPLOAD_ERR_* constants
     * @param string|null $clientFilename  the file name the client sent, without directories ($_FILES' name)
     * @param string|null $clientMediaType the media type the client sent, without parameters ('' when none)
     * @param string|null $clientFullPath  the file name as sent, with any relative directories of a
     *                                     directory upload ($_FILES' full_path); null: $clientFilename
     */
    public function __construct(
        private readonly string $file,
        private readonly int $size,
        private readonly int $error,
        private readonly ?string $clientFilename,
        private readonly ?string $clientMediaType,
        private readonly ?string $clientFullPath = null,
    ) {
        if ($error < UPLOAD_ERR_OK || $error > UPLOAD_ERR_EXTENSION || $error === 5) {
            throw new \InvalidArgumentException("invalid upload error code $error: expected one of the UPLOAD_ERR_* constants");
        }
    }

    /** The temporary file's path ('' when the upload failed); it stays the same after moveTo(). */
    public function getFile(): string
    {
        return $this->file;
    }

    /** The size in bytes, 0 when the upload failed. */
    public function getSize(): int
    {
        return $this->size;
    }

    /** One of the UPLOAD_ERR_* constants; UPLOAD_ERR_OK when the file was received whole. */
    public function getError(): int
    {
        return $this->error;
    }

    /** The file name the client sent, without directories. Never trust it as a path. */
    public function getClientFilename(): ?string
    {
        return $this->clientFilename;
    }

    /** The media type the client sent, without parameters ('' when it sent none). Never trust it. */
    public function getClientMediaType(): ?string
    {
        return $this->clientMediaType;
    }

    /** The file name as the client sent it, relative directories included (PHP's full_path). */
    public function getClientFullPath(): ?string
    {
        return $this->clientFullPath ?? $this->clientFilename;
    }

    /** True once moveTo() has succeeded. */
    public function isMoved(): bool
    {
        return $this->moved;
    }

    /**
     * The file's contents, read into memory.
     *
     * @throws \RuntimeException if the upload failed, the file was moved or it cannot be read
     */
    public function getContents(): string
    {
        $this->assertAvailable('read');
        $contents = false;
        $failure = self::attempt(function () use (&$contents): bool {
            $contents = file_get_contents($this->file);
            return $contents !== false;
        });
        if ($failure !== null) {
            throw new \RuntimeException("cannot read uploaded file {$this->file}: $failure");
        }
        return $contents;
    }

    /**
     * Moves the file to $targetPath (a path or a stream wrapper URL),
     * replacing any file there. Can be called once.
     *
     * @throws \InvalidArgumentException if $targetPath is empty
     * @throws \RuntimeException if the upload failed, was moved already or cannot be moved
     */
    public function moveTo(string $targetPath): void
    {
        $this->assertAvailable('move');
        if ($targetPath === '') {
            throw new \InvalidArgumentException('cannot move uploaded file: the target path is empty');
        }
        // rename() fails between stream wrappers (and, for wrappers other than
        // plain files, between filesystems); copying always works.
        $renameFailure = self::attempt(fn (): bool => rename($this->file, $targetPath));
        if ($renameFailure !== null) {
            $copyFailure = self::attempt(fn (): bool => copy($this->file, $targetPath));
            if ($copyFailure !== null) {
                throw new \RuntimeException("cannot move uploaded file {$this->file} to $targetPath: $renameFailure; copying failed too: $copyFailure");
            }
            // The copy is in place; a temporary file that cannot be removed
            // is not the caller's problem, the request's cleanup retries.
            self::attempt(fn (): bool => unlink($this->file));
        }
        $this->moved = true;
    }

    private function assertAvailable(string $action): void
    {
        if ($this->error !== UPLOAD_ERR_OK) {
            $name = $this->clientFilename ?? '';
            throw new \RuntimeException("cannot $action uploaded file \"$name\": " . self::describe($this->error));
        }
        if ($this->moved) {
            throw new \RuntimeException("cannot $action uploaded file {$this->file}: it has been moved already");
        }
    }

    /** What an UPLOAD_ERR_* code means, in the words of PHP's manual. */
    private static function describe(int $error): string
    {
        return match ($error) {
            UPLOAD_ERR_INI_SIZE => 'the file exceeds the upload_max_filesize directive in php.ini',
            UPLOAD_ERR_FORM_SIZE => 'the file exceeds the MAX_FILE_SIZE field of the form',
            UPLOAD_ERR_PARTIAL => 'the file was only partially uploaded',
            UPLOAD_ERR_NO_FILE => 'no file was uploaded',
            UPLOAD_ERR_NO_TMP_DIR => 'there is no usable temporary directory',
            UPLOAD_ERR_CANT_WRITE => 'the file could not be written to disk',
            UPLOAD_ERR_EXTENSION => 'an extension stopped the upload',
            default => "upload error $error",
        };
    }

    /**
     * Runs $operation, which returns false on failure, with PHP's warnings
     * captured instead of reported; returns null on success, else why it failed.
     */
    private static function attempt(\Closure $operation): ?string
    {
        $message = null;
        set_error_handler(static function (int $type, string $text) use (&$message): bool {
            $message = $text;
            return true;
        });
        try {
            $ok = $operation();
        } finally {
            restore_error_handler();
        }
        return $ok ? null : ($message ?? 'unknown error');
    }
}
