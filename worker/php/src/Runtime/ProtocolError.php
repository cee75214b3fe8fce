<?php

declare(strict_types=1);

namespace Drover\Runtime;

/**
 * The master sent something this SDK cannot read: a malformed frame header
 * or an oversized payload. The worker exits 1 and drover replaces it.
 */
final class ProtocolError extends \RuntimeException
{
}
