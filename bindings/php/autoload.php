<?php

// Plain `require 'bindings/php/autoload.php'` loads chatstore; no Composer needed.
spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'ChatStore\\', 10) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . substr($class, 10) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
