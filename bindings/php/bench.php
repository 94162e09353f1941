<?php
// history-list through chatstore's FFI vs the platform's own database on the
// same data, in one process: PDO SQLite always, PDO MySQL on a private
// MariaDB server when Debian's mariadb-server is installed (skipped with a
// message otherwise, or with --no-mysql). Median and p99 per request, and
// the ratios.
//
//   php bench.php [--members=20000] [--iterations=300] [--json=FILE] [--no-mysql]
//
// The peers are what a competent PHP developer runs for the platform
// (bench/platform_sql.php): the tables with indexes on (uniacid,
// employee_id, id) and (uniacid, uid), paginate()'s COUNT(*) plus a
// LIMIT/OFFSET page, eager loads of members and employees (whereIn), the
// user_name filter as whereHas() over the member (`nickname LIKE '%q%' OR
// mobile LIKE '%q%'`), and the same JSON built with json_encode.

declare(strict_types=1);

require __DIR__ . '/autoload.php';
require __DIR__ . '/bench/platform_sql.php';
require __DIR__ . '/bench/mariadb.php';

$opts = getopt('', ['members::', 'iterations::', 'json::', 'no-mysql']);
$members = (int) ($opts['members'] ?? 20000);
$iterations = (int) ($opts['iterations'] ?? 300);
$tenant = 1;
$tmp = sys_get_temp_dir() . '/chatstore-bench-' . getmypid();
mkdir($tmp, 0700);

$peers = ['sqlite' => new PDO("sqlite:$tmp/sqlite.db", null, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION])];
$mariadb = null;
if (isset($opts['no-mysql'])) {
    fwrite(STDERR, "MySQL peer skipped: --no-mysql\n");
} elseif (($why = MariaDb::missing()) !== null) {
    fwrite(STDERR, "MySQL peer skipped: $why\n");
} else {
    $mariadb = MariaDb::start("$tmp/mariadb");
    $peers['mysql'] = $mariadb->connect();
}
$versions = ['sqlite' => $peers['sqlite']->query('SELECT sqlite_version()')->fetchColumn()];
if (isset($peers['mysql'])) {
    $versions['mysql'] = $peers['mysql']->query('SELECT VERSION()')->fetchColumn();
}

// The same shop into chatstore (JSON Lines) and every peer.
$jsonl = fopen("$tmp/data.jsonl", 'w');
$loaders = [];
foreach ($peers as $name => $pdo) {
    platform_schema($pdo);
    $loaders[$name] = new PlatformLoader($pdo);
}
chatstore_dataset($tenant, $members, static function (array $r) use ($jsonl, $loaders): void {
    fwrite($jsonl, json_encode($r, JSON_UNESCAPED_UNICODE) . "\n");
    foreach ($loaders as $l) {
        $l->add($r);
    }
});
fclose($jsonl);
foreach ($loaders as $l) {
    $l->finish();
}
if (isset($peers['mysql'])) {
    $peers['mysql']->query('ANALYZE TABLE mc_members, yz_chat_employee, yz_chat_session')->fetchAll();
}

$store = ChatStore\Store::open("$tmp/chatstore.db", ['media_base' => 'http://localhost:82']);
$store->importJsonl("$tmp/data.jsonl");
// Measure the store as a server process finds it: opened, not freshly written.
$store->close();
$store = ChatStore\Store::open("$tmp/chatstore.db", ['media_base' => 'http://localhost:82']);

function measure(callable $f, int $n): array
{
    $f();
    $t = [];
    for ($i = 0; $i < $n; $i++) {
        $s = hrtime(true);
        $f();
        $t[] = (hrtime(true) - $s) / 1000;
    }
    sort($t);
    return [$t[intdiv($n, 2)], $t[min($n - 1, (int) floor($n * 0.99))]];
}

// A 2-character Chinese query taken from a member who has sessions of agent 7.
$cjk2 = mb_substr((string) $peers['sqlite']->query('SELECT m.nickname FROM yz_chat_session s JOIN mc_members m ON m.uid = s.uid WHERE s.uniacid = 1 AND s.employee_id = 7 ORDER BY s.id LIMIT 1')->fetchColumn(), 0, 2);
$cases = [
    'history_list_page1' => [null, 1],
    'history_list_page50' => [null, 50],
    'history_list_filter_cjk2' => [$cjk2, 1],
    'history_list_filter_mobile4' => ['1234', 1],
];
$results = [];
$header = sprintf('%-30s %14s', "workload ($members members)", 'chatstore us');
foreach (array_keys($peers) as $name) {
    $header .= sprintf(' %12s %9s', "$name us", 'ratio');
}
echo $header, "\n";
foreach ($cases as $name => [$q, $page]) {
    $params = ['tenant' => $tenant, 'employee' => 7, 'page' => $page, 'pagesize' => 10, 'user_name' => $q, 'page_url' => '/h'];
    $a = json_decode($store->historyListJson($params), true);
    [$cm, $c99] = measure(fn () => $store->historyListJson($params), $iterations);
    $row = ['workload' => $name, 'unit' => 'us', 'chatstore' => $cm, 'chatstore_p99' => $c99, 'total' => $a['data']['total']];
    $line = sprintf('%-30s %14.1f', $name, $cm);
    foreach ($peers as $peer => $pdo) {
        // Same answer from both, or the comparison means nothing.
        $b = json_decode(platform_history($pdo, $tenant, 7, $q, $page, 10, '/h'), true);
        $norm = static fn (array $v) => [$v['data']['total'], array_column($v['data']['data'], 'id')];
        // LIKE misses mobiles stored with punctuation ("139-1234-..."); chatstore
        // compares digits only, so for digit queries it may find more, never less.
        $digits = $q !== null && ctype_digit($q);
        $agree = $digits ? $a['data']['total'] >= $b['data']['total'] : $a === $b;
        if (!$agree) {
            fwrite(STDERR, "$name: chatstore and $peer disagree: " . json_encode($norm($a)) . ' vs ' . json_encode($norm($b)) . "\n");
            exit(1);
        }
        [$pm, $p99] = measure(fn () => platform_history($pdo, $tenant, 7, $q, $page, 10, '/h'), $iterations);
        $row[$peer] = $pm;
        $row["{$peer}_p99"] = $p99;
        $row["{$peer}_total"] = $b['data']['total'];
        $line .= sprintf(' %12.1f %8.1fx', $pm, $pm / $cm);
    }
    echo $line, sprintf('   (%d rows matched)', $a['data']['total']), "\n";
    $results[] = $row;
}
$store->close();
if (isset($opts['json'])) {
    file_put_contents($opts['json'], json_encode(['members' => $members, 'sessions' => 2 * $members, 'iterations' => $iterations,
        'php' => PHP_VERSION, 'peers' => $versions, 'results' => $results], JSON_PRETTY_PRINT) . "\n");
}
$mariadb?->stop();
exec('rm -rf ' . escapeshellarg($tmp));
