<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * The master sent something this SDK cannot read: a malformed frame header
 * or an oversized payload. The loop logs it and exits 1; drover replaces the
 * worker (the request in flight, if any, gets 502 from the master).
 */
final class ProtocolError extends \RuntimeException
{
}
