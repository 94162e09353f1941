<?php

declare(strict_types=1);

namespace ChatStore;

/** A record the call refers to does not exist. */
class NotFoundException extends Exception
{
}
