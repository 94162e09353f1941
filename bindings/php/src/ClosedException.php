<?php

declare(strict_types=1);

namespace ChatStore;

/** The Store was closed. */
class ClosedException extends Exception
{
}
