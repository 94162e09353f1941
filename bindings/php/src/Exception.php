<?php

declare(strict_types=1);

namespace ChatStore;

/** Base of every chatstore error; the code is the C ABI's cs_status. */
class Exception extends \RuntimeException
{
}
