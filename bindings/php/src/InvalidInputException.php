<?php

declare(strict_types=1);

namespace ChatStore;

/** Malformed input: a field out of range, too long, of the wrong type, or not UTF-8. */
class InvalidInputException extends Exception
{
}
