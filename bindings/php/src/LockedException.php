<?php

declare(strict_types=1);

namespace ChatStore;

/** The store is held by another process (or another Store object of this one). */
class LockedException extends Exception
{
}
