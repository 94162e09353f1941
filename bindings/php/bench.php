<?php
// history-list through chatstore's FFI vs the same data in SQLite through PDO,
// in one process: median and p99 per request, and the ratio.
//
//   php bench.php [--members=20000] [--iterations=300] [--json=FILE]
//
// The SQLite side is what a competent PHP developer would write for the
// platform's tables: indexes on (uniacid, employee_id, id) and (uniacid, uid),
// a COUNT(*) plus LIMIT/OFFSET page as Laravel's paginate() issues them, eager
// loads of members and employees (whereIn), the user_name filter as
// `nickname LIKE '%q%' OR mobile LIKE '%q%'`, and the same JSON response built
// with json_encode.

declare(strict_types=1);

require __DIR__ . '/autoload.php';

$opts = getopt('', ['members::', 'iterations::', 'json::']);
$members = (int) ($opts['members'] ?? 20000);
$iterations = (int) ($opts['iterations'] ?? 300);
$agents = 50;
$sessions = $members * 2;
$tenant = 1;
$tmp = sys_get_temp_dir() . '/chatstore-bench-' . getmypid();
mkdir($tmp);

// Deterministic data: 2-3 character Chinese nicknames, Chinese mobiles in mixed formats.
mt_srand(42);
$cjk = preg_split('//u', '李王张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董小明华芳伟静丽强磊军洋勇艳杰娟涛超秀英', -1, PREG_SPLIT_NO_EMPTY);
$jsonl = fopen("$tmp/data.jsonl", 'w');
$pdo = new PDO("sqlite:$tmp/sqlite.db");
$pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
$pdo->exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;');
$pdo->exec('CREATE TABLE mc_members (uid INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, nickname TEXT NOT NULL, mobile TEXT NOT NULL, avatar TEXT NOT NULL)');
$pdo->exec('CREATE TABLE yz_chat_employee (id INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, uid INTEGER NOT NULL, nickname TEXT NOT NULL, avatar TEXT NOT NULL)');
$pdo->exec('CREATE TABLE yz_chat_session (id INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, uid INTEGER NOT NULL, employee_id INTEGER NOT NULL, last_updated_at INTEGER NOT NULL)');
$pdo->exec('CREATE INDEX session_employee ON yz_chat_session (uniacid, employee_id, id)');
$pdo->exec('CREATE INDEX session_member ON yz_chat_session (uniacid, uid)');
$pdo->exec('CREATE INDEX member_uniacid ON mc_members (uniacid)');
$pdo->beginTransaction();
$insA = $pdo->prepare('INSERT INTO yz_chat_employee VALUES (?, ?, ?, ?, ?)');
for ($a = 1; $a <= $agents; $a++) {
    $r = ['tenant' => $tenant, 'id' => $a, 'uid' => 100000 + $a, 'nickname' => sprintf('客服%04d', $a), 'avatar' => 'https://localhost:82/attachment/images/agent.jpg'];
    fwrite($jsonl, json_encode(['kind' => 'agent'] + $r, JSON_UNESCAPED_UNICODE) . "\n");
    $insA->execute([$a, $tenant, $r['uid'], $r['nickname'], $r['avatar']]);
}
$insM = $pdo->prepare('INSERT INTO mc_members VALUES (?, ?, ?, ?, ?)');
for ($uid = 1; $uid <= $members; $uid++) {
    $nick = '';
    for ($i = 0, $n = mt_rand(2, 3); $i < $n; $i++) {
        $nick .= $cjk[mt_rand(0, count($cjk) - 1)];
    }
    $digits = sprintf('1%d%09d', mt_rand(3, 9), mt_rand(0, 999999999));
    $mobile = match (mt_rand(0, 2)) { 0 => $digits, 1 => '+86 ' . $digits, default => substr($digits, 0, 3) . '-' . substr($digits, 3, 4) . '-' . substr($digits, 7) };
    $r = ['tenant' => $tenant, 'uid' => $uid, 'nickname' => $nick, 'mobile' => $mobile, 'avatar' => '/addons/yun_shop/static/images/photo-mr.jpg'];
    fwrite($jsonl, json_encode(['kind' => 'member'] + $r, JSON_UNESCAPED_UNICODE) . "\n");
    $insM->execute([$uid, $tenant, $nick, $mobile, $r['avatar']]);
}
$insS = $pdo->prepare('INSERT INTO yz_chat_session VALUES (?, ?, ?, ?, ?)');
for ($sid = 1; $sid <= $sessions; $sid++) {
    $r = ['tenant' => $tenant, 'id' => $sid, 'uid' => mt_rand(1, $members), 'agent_id' => mt_rand(1, $agents), 'last_updated_at' => 1600000000 + $sid];
    fwrite($jsonl, json_encode(['kind' => 'session'] + $r) . "\n");
    $insS->execute([$sid, $tenant, $r['uid'], $r['agent_id'], $r['last_updated_at']]);
}
$pdo->commit();
fclose($jsonl);

$store = ChatStore\Store::open("$tmp/chatstore.db", ['media_base' => 'http://localhost:82']);
$store->importJsonl("$tmp/data.jsonl");
// Measure the store as a server process finds it: opened, not freshly written.
$store->close();
$store = ChatStore\Store::open("$tmp/chatstore.db", ['media_base' => 'http://localhost:82']);

function avatar_image(string $a): string
{
    if ($a === '') return '';
    if (str_starts_with($a, 'http://') || str_starts_with($a, 'https://')) return $a;
    $i = strpos($a, '/addons/');
    return $i !== false ? 'http://localhost:82' . substr($a, $i) : 'http://localhost:82/attachment/' . ltrim($a, '/');
}

/** The platform's history-list on SQLite, as Laravel would run it. */
function sqlite_history(PDO $pdo, int $tenant, int $employee, ?string $q, int $page, int $per): string
{
    $where = 'uniacid = ? AND employee_id = ?';
    $args = [$tenant, $employee];
    if ($q !== null && $q !== '') {
        $where .= ' AND uid IN (SELECT uid FROM mc_members WHERE uniacid = ? AND (nickname LIKE ? OR mobile LIKE ?))';
        array_push($args, $tenant, "%$q%", "%$q%");
    }
    $count = $pdo->prepare("SELECT COUNT(*) FROM yz_chat_session WHERE $where");
    $count->execute($args);
    $total = (int) $count->fetchColumn();
    $rows = $pdo->prepare("SELECT id, uniacid, uid, employee_id, last_updated_at FROM yz_chat_session WHERE $where ORDER BY id DESC LIMIT $per OFFSET " . (($page - 1) * $per));
    $rows->execute($args);
    $rows = $rows->fetchAll(PDO::FETCH_ASSOC);
    $emp = $mem = [];
    if ($rows) {
        $ids = array_unique(array_column($rows, 'employee_id'));
        $st = $pdo->prepare('SELECT id, uid, uniacid, nickname, avatar FROM yz_chat_employee WHERE id IN (' . implode(',', array_fill(0, count($ids), '?')) . ')');
        $st->execute(array_values($ids));
        foreach ($st->fetchAll(PDO::FETCH_ASSOC) as $e) { $emp[$e['id']] = $e; }
        $uids = array_unique(array_column($rows, 'uid'));
        $st = $pdo->prepare('SELECT uid, uniacid, nickname, avatar, mobile FROM mc_members WHERE uid IN (' . implode(',', array_fill(0, count($uids), '?')) . ')');
        $st->execute(array_values($uids));
        foreach ($st->fetchAll(PDO::FETCH_ASSOC) as $m) { $mem[$m['uid']] = $m; }
    }
    $data = [];
    foreach ($rows as $r) {
        $e = $emp[$r['employee_id']] ?? null;
        $m = $mem[$r['uid']] ?? null;
        $data[] = ['id' => (int) $r['id'], 'uniacid' => (int) $r['uniacid'], 'uid' => (int) $r['uid'], 'employee_id' => (int) $r['employee_id'],
            'last_updated_at' => $r['last_updated_at'] ? date('Y-m-d H:i:s', (int) $r['last_updated_at'] + 8 * 3600) : '',
            'has_one_employee' => $e ? ['id' => (int) $e['id'], 'uid' => (int) $e['uid'], 'uniacid' => (int) $e['uniacid'], 'nickname' => $e['nickname'], 'avatar' => $e['avatar']] : null,
            'has_one_user' => $m ? ['uid' => (int) $m['uid'], 'uniacid' => (int) $m['uniacid'], 'nickname' => $m['nickname'], 'avatar' => $m['avatar'], 'mobile' => $m['mobile'], 'avatar_image' => avatar_image($m['avatar']), 'username' => $m['nickname']] : null];
    }
    $last = (int) ceil($total / $per);
    $from = $data ? ($page - 1) * $per + 1 : null;
    return json_encode(['result' => 1, 'msg' => '成功', 'data' => ['total' => $total, 'per_page' => $per, 'current_page' => $page, 'last_page' => $last,
        'next_page_url' => $last > $page ? '/h?page=' . ($page + 1) : null, 'prev_page_url' => $page > 1 ? '/h?page=' . ($page - 1) : null,
        'from' => $from, 'to' => $from === null ? null : $from + count($data) - 1, 'data' => $data]], JSON_UNESCAPED_UNICODE);
}

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
$cjk2 = mb_substr((string) $pdo->query('SELECT m.nickname FROM yz_chat_session s JOIN mc_members m ON m.uid = s.uid WHERE s.uniacid = 1 AND s.employee_id = 7 ORDER BY s.id LIMIT 1')->fetchColumn(), 0, 2);
$cases = [
    'history_list_page1' => [null, 1],
    'history_list_page50' => [null, 50],
    'history_list_filter_cjk2' => [$cjk2, 1],
    'history_list_filter_mobile4' => ['1234', 1],
];
date_default_timezone_set('UTC');
$results = [];
printf("%-30s %14s %14s %10s\n", "workload ($members members)", 'chatstore us', 'sqlite us', 'ratio');
foreach ($cases as $name => [$q, $page]) {
    $params = ['tenant' => $tenant, 'employee' => 7, 'page' => $page, 'pagesize' => 10, 'user_name' => $q, 'page_url' => '/h'];
    // Same answer from both, or the comparison means nothing.
    $a = json_decode($store->historyListJson($params), true);
    $b = json_decode(sqlite_history($pdo, $tenant, 7, $q, $page, 10), true);
    $norm = static fn (array $v) => [$v['data']['total'], array_column($v['data']['data'], 'id')];
    // LIKE misses mobiles stored with punctuation ("139-1234-..."); chatstore
    // compares digits only, so for digit queries it may find more, never less.
    $digits = $q !== null && ctype_digit($q);
    $agree = $digits ? $a['data']['total'] >= $b['data']['total'] : $norm($a) === $norm($b);
    if (!$agree) {
        fwrite(STDERR, "$name: engines disagree: " . json_encode($norm($a)) . ' vs ' . json_encode($norm($b)) . "\n");
        exit(1);
    }
    [$cm, $c99] = measure(fn () => $store->historyListJson($params), $iterations);
    [$sm, $s99] = measure(fn () => sqlite_history($pdo, $tenant, 7, $q, $page, 10), $iterations);
    printf("%-30s %14.1f %14.1f %9.1fx   (%d vs %d rows matched)\n", $name, $cm, $sm, $sm / $cm, $a['data']['total'], $b['data']['total']);
    $results[] = ['workload' => $name, 'unit' => 'us', 'chatstore' => $cm, 'chatstore_p99' => $c99, 'sqlite' => $sm, 'sqlite_p99' => $s99, 'total' => $a['data']['total']];
}
$store->close();
if (isset($opts['json'])) {
    file_put_contents($opts['json'], json_encode(['members' => $members, 'sessions' => $sessions, 'iterations' => $iterations, 'results' => $results], JSON_PRETTY_PRINT) . "\n");
}
exec('rm -rf ' . escapeshellarg($tmp));
