<?php

declare(strict_types=1);

namespace ChatStore;

/**
 * Loads libchatstore_ffi through PHP's FFI, once per library path.
 *
 * The path comes from $options['lib'], else the CHATSTORE_LIB environment
 * variable, else the workspace's target/release build.
 * @internal
 */
final class Library
{
    /** @var array<string, \FFI> */
    private static array $loaded = [];

    public static function path(array $options): string
    {
        if (isset($options['lib']) && $options['lib'] !== '') {
            return (string) $options['lib'];
        }
        $env = getenv('CHATSTORE_LIB');
        if ($env !== false && $env !== '') {
            return $env;
        }
        return dirname(__DIR__, 3) . '/target/release/libchatstore_ffi.so';
    }

    public static function load(string $lib): \FFI
    {
        if (!isset(self::$loaded[$lib])) {
            if (!extension_loaded('ffi')) {
                throw new Exception('the PHP FFI extension is not loaded (ffi.enable=1 or preload)');
            }
            if (!is_file($lib)) {
                throw new Exception("chatstore library not found at $lib: build it with `cargo build --release -p chatstore-ffi` or set CHATSTORE_LIB");
            }
            $header = dirname(__DIR__, 3) . '/include/chatstore_php.h';
            $decls = @file_get_contents($header);
            if ($decls === false) {
                throw new Exception("chatstore header not found at $header");
            }
            try {
                self::$loaded[$lib] = \FFI::cdef($decls, realpath($lib) ?: $lib);
            } catch (\FFI\Exception $e) {
                throw new Exception('cannot load the chatstore library: ' . $e->getMessage()
                    . ' (outside the CLI, PHP needs ffi.enable=1, or ffi.preload)', 0, $e);
            }
        }
        return self::$loaded[$lib];
    }
}
