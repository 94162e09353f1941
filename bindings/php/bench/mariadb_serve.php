<?php
// For bench/fpm.sh: starts a private MariaDB in DIR (reachable by the
// pool's user), loads the shop of MEMBERS members (dataset.php) into the
// platform's tables, writes DIR/ready, and serves until its standard input
// closes; then stops the server.
//   php mariadb_serve.php DIR MEMBERS

declare(strict_types=1);

require __DIR__ . '/platform_sql.php';
require __DIR__ . '/mariadb.php';

[, $dir, $members] = $argv;
$server = MariaDb::start($dir, 60, 0711);
$pdo = $server->connect();
platform_schema($pdo);
$loader = new PlatformLoader($pdo);
chatstore_dataset(1, (int) $members, [$loader, 'add']);
$loader->finish();
$pdo->query('ANALYZE TABLE mc_members, yz_chat_employee, yz_chat_session')->fetchAll();
file_put_contents("$dir/ready", $server->socket);
stream_get_contents(STDIN);
$server->stop();
