<?php

declare(strict_types=1);

namespace ChatStore;

/** The write would break a rule of the data model. */
class ConflictException extends Exception
{
}
