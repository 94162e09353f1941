<?php
// One PHP-FPM-style worker for tests/php_workers.sh: N requests, each opening
// the store, doing one thing and closing it, as a worker does per request.
// Logs "owner PID NANOS" when this process owns a sled store, and "ack CONTENT
// VIA" for every append only after it was acknowledged (VIA: "direct" on an
// LMDB store, which every process opens itself; "owner" or "socket" on sled).
// Usage: php -d ffi.enable=1 tests/php_worker.php DB WORKER N LOG
declare(strict_types=1);
require dirname(__DIR__) . '/bindings/php/autoload.php';

[$_, $db, $worker, $n, $logPath] = $argv;
$log = fopen($logPath, 'a');
for ($i = 0; $i < (int) $n; $i++) {
    $store = ChatStore\Store::open($db, ['media_base' => 'http://localhost:82']);
    $direct = $store->info()['backend'] === 'lmdb';
    $owner = !$direct && $store->isOwner();
    if ($owner) {
        fwrite($log, 'owner ' . getmypid() . ' ' . hrtime(true) . "\n");
    }
    switch ($i % 3) {
        case 0:
            $content = "w$worker-$i";
            $store->appendMessage(['tenant' => 2, 'session_id' => 4, 'content' => $content, 'time' => 1800000000 + $i]);
            fwrite($log, "ack $content " . ($direct ? 'direct' : ($owner ? 'owner' : 'socket')) . "\n");
            break;
        case 1:
            $r = $store->historyList(['tenant' => 2, 'employee' => 2]);
            if ($r['data']['total'] !== 3) {
                fwrite(STDERR, "history-list total {$r['data']['total']}\n");
                exit(1);
            }
            break;
        default:
            $r = $store->hischat(218, '5f4dcc3b5aa765d61d8327deb882cf99', 1);
            if ($r['status'] !== 1) {
                fwrite(STDERR, 'hischat ' . json_encode($r) . "\n");
                exit(1);
            }
    }
    $store->close();
    usleep(3000);
}
