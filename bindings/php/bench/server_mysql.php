<?php
// The same front controller as examples/server.php, on the platform's own
// database: history-list from MySQL through PDO, as the plugin's Laravel
// code runs it (platform_sql.php), one connection per request as Laravel
// opens it. For bench/fpm.sh; MYSQL_SOCKET names the server's socket.

declare(strict_types=1);

require __DIR__ . '/platform_sql.php';

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
header('Content-Type: application/json; charset=utf-8');
if ($path !== '/plugin.yun-chat.frontend.chat.history-list') {
    http_response_code(404);
    echo json_encode(['result' => 0, 'msg' => "no route $path", 'data' => []]);
    return;
}
$pdo = new PDO('mysql:unix_socket=' . getenv('MYSQL_SOCKET') . ';dbname=chatstore_bench;charset=utf8mb4', 'root', '', [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$page = max(1, (int) ($_GET['page'] ?? 1));
$per = (int) ($_GET['pagesize'] ?? 10);
$per = $per >= 1 && $per <= 100 ? $per : 10;
$q = isset($_GET['user_name']) ? (string) $_GET['user_name'] : null;
echo platform_history($pdo, (int) ($_GET['i'] ?? 0), (int) ($_GET['employee_id'] ?? 0), $q, $page, $per, $path);
