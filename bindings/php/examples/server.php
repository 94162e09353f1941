<?php
// A front controller serving both platforms' endpoints from a chatstore:
//
//   CHATSTORE_DB=shop.db php -d ffi.enable=1 -S 127.0.0.1:8080 bindings/php/examples/server.php
//   curl 'http://127.0.0.1:8080/plugin.yun-chat.frontend.chat.history-list?i=2&employee_id=2&page=1'
//   curl -d 'sso_id=218&hash=...&page=1' http://127.0.0.1:8080/hischat.php
//
// `i` is the shop (uniacid) and `employee_id` the logged-in agent: in the
// platform both come from the session; here they are request parameters.

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
header('Content-Type: application/json; charset=utf-8');

try {
    $store = ChatStore\Store::open(getenv('CHATSTORE_DB') ?: 'shop.db', [
        'media_base' => getenv('CHATSTORE_MEDIA_BASE') ?: 'http://localhost:82',
    ]);
    if ($method === 'GET' && $path === '/plugin.yun-chat.frontend.chat.history-list') {
        echo $store->historyListJson([
            'tenant' => $_GET['i'] ?? null,
            'employee' => $_GET['employee_id'] ?? null,
            'user_name' => $_GET['user_name'] ?? null,
            'page' => $_GET['page'] ?? null,
            'pagesize' => $_GET['pagesize'] ?? null,
            'page_url' => $path,
        ]);
    } elseif ($method === 'POST' && $path === '/hischat.php') {
        echo $store->hischatJson((int) ($_POST['sso_id'] ?? 0), (string) ($_POST['hash'] ?? ''), (int) ($_POST['page'] ?? 1));
    } else {
        http_response_code(404);
        echo json_encode(['result' => 0, 'msg' => "no route $method $path", 'data' => []]);
    }
    $store->close();
} catch (ChatStore\Exception $e) {
    http_response_code($e instanceof ChatStore\InvalidInputException ? 400 : 500);
    echo json_encode(['result' => 0, 'msg' => $e->getMessage(), 'data' => []], JSON_UNESCAPED_UNICODE);
}
