<?php

declare(strict_types=1);

namespace ChatStore;

/** The storage layer failed: I/O, a damaged store, or a store of a newer format. */
class StorageException extends Exception
{
}
