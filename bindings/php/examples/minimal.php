<?php
// The README's front controller: both endpoints, errors as JSON. Run from any directory:
//   CHATSTORE_DB=/abs/shop.db php -d ffi.enable=1 -S 127.0.0.1:8080 /abs/chatstore/bindings/php/examples/minimal.php
require __DIR__ . '/../autoload.php';
header('Content-Type: application/json; charset=utf-8');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
try {
    $store = ChatStore\Store::open(getenv('CHATSTORE_DB') ?: 'shop.db', ['media_base' => 'http://localhost:82', 'create_if_missing' => false]);
    echo match ($path) {
        '/plugin.yun-chat.frontend.chat.history-list' => $store->historyListJson(['tenant' => $_GET['i'] ?? null,
            'employee' => $_GET['employee_id'] ?? null, 'user_name' => $_GET['user_name'] ?? null,
            'page' => $_GET['page'] ?? null, 'pagesize' => $_GET['pagesize'] ?? null, 'page_url' => $path]),
        '/hischat.php' => $store->hischatJson((int) ($_POST['sso_id'] ?? 0), (string) ($_POST['hash'] ?? ''), (int) ($_POST['page'] ?? 1)),
        default => throw new ChatStore\NotFoundException('no such endpoint', -2),
    };
} catch (ChatStore\Exception $e) {
    http_response_code(match (true) { $e instanceof ChatStore\InvalidInputException => 400, $e instanceof ChatStore\NotFoundException => 404, default => 500 });
    echo json_encode(['result' => 0, 'msg' => $e->getMessage(), 'data' => []], JSON_UNESCAPED_UNICODE);
}
