<?php
// The benchmarks' and the FPM test's shop: one tenant's agents, members and
// sessions, deterministic (mt_srand(42)): 2-3 character Chinese nicknames,
// Chinese mobiles in mixed formats, two sessions per member spread over
// the agents. Each record is handed to $emit as the import format's array
// (`kind` first), in the order an import needs them.

declare(strict_types=1);

/** The number of agents of the generated shop. */
const DATASET_AGENTS = 50;

function chatstore_dataset(int $tenant, int $members, callable $emit): void
{
    mt_srand(42);
    $cjk = preg_split('//u', '李王张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董小明华芳伟静丽强磊军洋勇艳杰娟涛超秀英', -1, PREG_SPLIT_NO_EMPTY);
    for ($a = 1; $a <= DATASET_AGENTS; $a++) {
        $emit(['kind' => 'agent', 'tenant' => $tenant, 'id' => $a, 'uid' => 100000 + $a, 'nickname' => sprintf('客服%04d', $a), 'avatar' => 'https://localhost:82/attachment/images/agent.jpg']);
    }
    for ($uid = 1; $uid <= $members; $uid++) {
        $nick = '';
        for ($i = 0, $n = mt_rand(2, 3); $i < $n; $i++) {
            $nick .= $cjk[mt_rand(0, count($cjk) - 1)];
        }
        $digits = sprintf('1%d%09d', mt_rand(3, 9), mt_rand(0, 999999999));
        $mobile = match (mt_rand(0, 2)) { 0 => $digits, 1 => '+86 ' . $digits, default => substr($digits, 0, 3) . '-' . substr($digits, 3, 4) . '-' . substr($digits, 7) };
        $emit(['kind' => 'member', 'tenant' => $tenant, 'uid' => $uid, 'nickname' => $nick, 'mobile' => $mobile, 'avatar' => '/addons/yun_shop/static/images/photo-mr.jpg']);
    }
    for ($sid = 1; $sid <= 2 * $members; $sid++) {
        $emit(['kind' => 'session', 'tenant' => $tenant, 'id' => $sid, 'uid' => mt_rand(1, $members), 'agent_id' => mt_rand(1, DATASET_AGENTS), 'last_updated_at' => 1600000000 + $sid]);
    }
}

// As a script: the shop as JSON Lines on standard output.
//   php dataset.php TENANT MEMBERS
if (realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    [, $tenant, $members] = $argv + [null, '1', '1000'];
    chatstore_dataset((int) $tenant, (int) $members, static function (array $r): void {
        echo json_encode($r, JSON_UNESCAPED_UNICODE), "\n";
    });
}
