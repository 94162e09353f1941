<?php
// The platform's own side of the comparisons: its tables in SQLite or
// MySQL/MariaDB with the indexes a competent developer adds, loaded with the
// same shop (dataset.php), and history-list as the plugin's Laravel code
// issues it: paginate() runs a COUNT(*) and a LIMIT/OFFSET page, with()
// eager-loads the page's employees and members (whereIn), and the
// user_name filter is whereHas() over the member: an EXISTS subquery with
// `nickname LIKE '%q%' OR mobile LIKE '%q%'`. The response is the same JSON
// chatstore renders, built with json_encode.

declare(strict_types=1);

require_once __DIR__ . '/dataset.php';

/** Creates the platform's tables and indexes on $pdo (sqlite or mysql). */
function platform_schema(PDO $pdo): void
{
    if ($pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'mysql') {
        // As a Laravel migration makes them: InnoDB, utf8mb4_unicode_ci.
        $t = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci';
        $pdo->exec("CREATE TABLE mc_members (uid INT UNSIGNED NOT NULL PRIMARY KEY, uniacid INT NOT NULL, nickname VARCHAR(100) NOT NULL, mobile VARCHAR(32) NOT NULL, avatar VARCHAR(255) NOT NULL, KEY member_uniacid (uniacid)) $t");
        $pdo->exec("CREATE TABLE yz_chat_employee (id INT UNSIGNED NOT NULL PRIMARY KEY, uniacid INT NOT NULL, uid INT NOT NULL, nickname VARCHAR(100) NOT NULL, avatar VARCHAR(255) NOT NULL) $t");
        $pdo->exec("CREATE TABLE yz_chat_session (id INT UNSIGNED NOT NULL PRIMARY KEY, uniacid INT NOT NULL, uid INT NOT NULL, employee_id INT NOT NULL, last_updated_at INT NOT NULL, KEY session_employee (uniacid, employee_id, id), KEY session_member (uniacid, uid)) $t");
        return;
    }
    $pdo->exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;');
    $pdo->exec('CREATE TABLE mc_members (uid INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, nickname TEXT NOT NULL, mobile TEXT NOT NULL, avatar TEXT NOT NULL)');
    $pdo->exec('CREATE TABLE yz_chat_employee (id INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, uid INTEGER NOT NULL, nickname TEXT NOT NULL, avatar TEXT NOT NULL)');
    $pdo->exec('CREATE TABLE yz_chat_session (id INTEGER PRIMARY KEY, uniacid INTEGER NOT NULL, uid INTEGER NOT NULL, employee_id INTEGER NOT NULL, last_updated_at INTEGER NOT NULL)');
    $pdo->exec('CREATE INDEX session_employee ON yz_chat_session (uniacid, employee_id, id)');
    $pdo->exec('CREATE INDEX session_member ON yz_chat_session (uniacid, uid)');
    $pdo->exec('CREATE INDEX member_uniacid ON mc_members (uniacid)');
}

/** Buffers the dataset's records into the platform's tables, 500 rows an INSERT. */
final class PlatformLoader
{
    private const COLUMNS = [
        'agent' => ['yz_chat_employee', ['id', 'tenant', 'uid', 'nickname', 'avatar']],
        'member' => ['mc_members', ['uid', 'tenant', 'nickname', 'mobile', 'avatar']],
        'session' => ['yz_chat_session', ['id', 'tenant', 'uid', 'agent_id', 'last_updated_at']],
    ];
    /** @var array<string, list<array>> */
    private array $rows = [];

    public function __construct(private PDO $pdo)
    {
        $pdo->beginTransaction();
    }

    public function add(array $r): void
    {
        $kind = $r['kind'];
        $this->rows[$kind][] = array_map(static fn ($c) => $r[$c], self::COLUMNS[$kind][1]);
        if (count($this->rows[$kind]) >= 500) {
            $this->flush($kind);
        }
    }

    public function finish(): void
    {
        foreach (array_keys($this->rows) as $kind) {
            $this->flush($kind);
        }
        $this->pdo->commit();
    }

    private function flush(string $kind): void
    {
        $rows = $this->rows[$kind];
        if ($rows === []) {
            return;
        }
        $row = '(' . implode(',', array_fill(0, count($rows[0]), '?')) . ')';
        $st = $this->pdo->prepare('INSERT INTO ' . self::COLUMNS[$kind][0] . ' VALUES ' . implode(',', array_fill(0, count($rows), $row)));
        $st->execute(array_merge(...$rows));
        $this->rows[$kind] = [];
    }
}

function platform_avatar_image(string $a): string
{
    if ($a === '') return '';
    if (str_starts_with($a, 'http://') || str_starts_with($a, 'https://')) return $a;
    $i = strpos($a, '/addons/');
    return $i !== false ? 'http://localhost:82' . substr($a, $i) : 'http://localhost:82/attachment/' . ltrim($a, '/');
}

/** The platform's history-list, as its Laravel code runs it on $pdo. */
function platform_history(PDO $pdo, int $tenant, int $employee, ?string $q, int $page, int $per, string $pageUrl): string
{
    $where = 'uniacid = ? AND employee_id = ?';
    $args = [$tenant, $employee];
    if ($q !== null && $q !== '') {
        // whereHas('hasOneUser', fn ($m) => $m->where('nickname', 'like', "%$q%")->orWhere('mobile', 'like', "%$q%"))
        $where .= ' AND EXISTS (SELECT * FROM mc_members WHERE yz_chat_session.uid = mc_members.uid AND (nickname LIKE ? OR mobile LIKE ?))';
        array_push($args, "%$q%", "%$q%");
    }
    $count = $pdo->prepare("SELECT COUNT(*) AS aggregate FROM yz_chat_session WHERE $where");
    $count->execute($args);
    $total = (int) $count->fetchAll(PDO::FETCH_COLUMN)[0];
    $rows = $pdo->prepare("SELECT * FROM yz_chat_session WHERE $where ORDER BY id DESC LIMIT $per OFFSET " . (($page - 1) * $per));
    $rows->execute($args);
    $rows = $rows->fetchAll(PDO::FETCH_ASSOC);
    $emp = $mem = [];
    if ($rows) {
        $ids = array_values(array_unique(array_column($rows, 'employee_id')));
        $st = $pdo->prepare('SELECT id, uid, uniacid, nickname, avatar FROM yz_chat_employee WHERE id IN (' . implode(',', array_fill(0, count($ids), '?')) . ')');
        $st->execute($ids);
        foreach ($st->fetchAll(PDO::FETCH_ASSOC) as $e) { $emp[$e['id']] = $e; }
        $uids = array_values(array_unique(array_column($rows, 'uid')));
        $st = $pdo->prepare('SELECT uid, uniacid, nickname, avatar, mobile FROM mc_members WHERE uid IN (' . implode(',', array_fill(0, count($uids), '?')) . ')');
        $st->execute($uids);
        foreach ($st->fetchAll(PDO::FETCH_ASSOC) as $m) { $mem[$m['uid']] = $m; }
    }
    $data = [];
    foreach ($rows as $r) {
        $e = $emp[$r['employee_id']] ?? null;
        $m = $mem[$r['uid']] ?? null;
        $data[] = ['id' => (int) $r['id'], 'uniacid' => (int) $r['uniacid'], 'uid' => (int) $r['uid'], 'employee_id' => (int) $r['employee_id'],
            'last_updated_at' => $r['last_updated_at'] ? gmdate('Y-m-d H:i:s', (int) $r['last_updated_at'] + 8 * 3600) : '',
            'has_one_employee' => $e ? ['id' => (int) $e['id'], 'uid' => (int) $e['uid'], 'uniacid' => (int) $e['uniacid'], 'nickname' => $e['nickname'], 'avatar' => $e['avatar']] : null,
            'has_one_user' => $m ? ['uid' => (int) $m['uid'], 'uniacid' => (int) $m['uniacid'], 'nickname' => $m['nickname'], 'avatar' => $m['avatar'], 'mobile' => $m['mobile'], 'avatar_image' => platform_avatar_image($m['avatar']), 'username' => $m['nickname']] : null];
    }
    $last = (int) ceil($total / $per);
    $from = $data ? ($page - 1) * $per + 1 : null;
    return json_encode(['result' => 1, 'msg' => '成功', 'data' => ['total' => $total, 'per_page' => $per, 'current_page' => $page, 'last_page' => $last,
        'next_page_url' => $last > $page ? "$pageUrl?page=" . ($page + 1) : null, 'prev_page_url' => $page > 1 ? "$pageUrl?page=" . ($page - 1) : null,
        'from' => $from, 'to' => $from === null ? null : $from + count($data) - 1, 'data' => $data]], JSON_UNESCAPED_UNICODE);
}
