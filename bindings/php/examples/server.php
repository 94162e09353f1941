<?php
// A front controller serving both platforms' endpoints from a chatstore:
//
//   CHATSTORE_DB=shop.db php -d ffi.enable=1 -S 127.0.0.1:8080 bindings/php/examples/server.php
//   curl 'http://127.0.0.1:8080/plugin.yun-chat.frontend.chat.history-list?i=2&employee_id=2&page=1'
//   curl -d 'sso_id=218&hash=...&page=1' http://127.0.0.1:8080/hischat.php
//   curl -d 'i=2&session_id=4&sender=agent&sender_id=2&content=hi&id=900001' http://127.0.0.1:8080/message
//
// POST /message appends a message and answers its id. Give the message's
// `id` (the client's own, unique in the shop) and the request is idempotent:
// sent twice (a retry after a worker died mid-request, as the nginx
// configuration in bindings/php/README.md does) it is stored once.
//
// Environment: CHATSTORE_DB (the store), CHATSTORE_LIB (the library),
// CHATSTORE_MEDIA_BASE, CHATSTORE_DURABILITY (`buffered`, the default, or
// `sync`: an acknowledged append survives a power loss, and on a sled store
// the kill of the worker that owns it).
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
        'durability' => getenv('CHATSTORE_DURABILITY') ?: 'buffered',
    ]);
    // The answer is made whole and the store closed before a byte is sent:
    // a worker that dies before answering has sent nothing, so nginx can
    // hand the request to another (see the README's deployment).
    if ($method === 'GET' && $path === '/plugin.yun-chat.frontend.chat.history-list') {
        $body = $store->historyListJson([
            'tenant' => $_GET['i'] ?? null,
            'employee' => $_GET['employee_id'] ?? null,
            'user_name' => $_GET['user_name'] ?? null,
            'page' => $_GET['page'] ?? null,
            'pagesize' => $_GET['pagesize'] ?? null,
            'page_url' => $path,
        ]);
    } elseif ($method === 'POST' && $path === '/hischat.php') {
        $body = $store->hischatJson((int) ($_POST['sso_id'] ?? 0), (string) ($_POST['hash'] ?? ''), (int) ($_POST['page'] ?? 1));
    } elseif ($method === 'POST' && $path === '/message') {
        // Form fields are text: whole numbers become integers, anything
        // else goes to the store as sent and is refused naming its field.
        $number = static fn ($v) => is_string($v) && preg_match('/^[0-9]{1,18}$/', $v) ? (int) $v : $v;
        $message = ['content' => $_POST['content'] ?? ''];
        foreach (['tenant' => 'i', 'session_id' => 'session_id', 'id' => 'id', 'sender_id' => 'sender_id', 'content_type' => 'content_type', 'time' => 'time'] as $field => $form) {
            if (isset($_POST[$form])) {
                $message[$field] = $number($_POST[$form]);
            }
        }
        foreach (['sender', 'link', 'ip'] as $field) {
            if (isset($_POST[$field])) {
                $message[$field] = $_POST[$field];
            }
        }
        $message['time'] ??= time();
        $body = json_encode(['result' => 1, 'msg' => 'ok', 'data' => ['id' => $store->appendMessage($message)]]);
    } else {
        http_response_code(404);
        $body = json_encode(['result' => 0, 'msg' => "no route $method $path", 'data' => []]);
    }
    $store->close();
    echo $body;
} catch (ChatStore\Exception $e) {
    http_response_code(match (true) {
        $e instanceof ChatStore\InvalidInputException => 400,
        $e instanceof ChatStore\NotFoundException => 404,
        $e instanceof ChatStore\ConflictException => 409,
        default => 500,
    });
    echo json_encode(['result' => 0, 'msg' => $e->getMessage(), 'data' => []], JSON_UNESCAPED_UNICODE);
}
