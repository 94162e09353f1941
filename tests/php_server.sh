#!/usr/bin/env bash
# End to end across languages: the chatstore CLI builds a store from the seeds,
# PHP's built-in server serves both endpoints from it through the C ABI
# (bindings/php/examples/server.php), curl fetches them, and the answers are
# compared with the expected responses.
# Usage: tests/php_server.sh [TARGET_DIR]   (default: target/debug)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(cd "${1:-$root/target/debug}" && pwd)"
tmp="$(mktemp -d)"
pass=0 fail=0
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; [ "$fail" -gt 0 ] && cat "$tmp/server.log" >&2; rm -rf "$tmp"; }
trap cleanup EXIT
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
same_json() { php -r 'exit(json_decode(file_get_contents($argv[1]), true) === json_decode(file_get_contents($argv[2]), true) ? 0 : 1);' "$1" "$2"; }

"$bin/chatstore" import --db "$tmp/db" "$root/crates/chatstore/data/seeds.jsonl" 2>/dev/null || { echo "import failed" >&2; exit 1; }
port=$(php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo explode(":", stream_socket_get_name($s, false))[1];')
CHATSTORE_DB="$tmp/db" CHATSTORE_LIB="$bin/libchatstore_ffi.so" \
  php -d ffi.enable=1 -S "127.0.0.1:$port" "$root/bindings/php/examples/server.php" >"$tmp/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
base="http://127.0.0.1:$port"

curl -s "$base/plugin.yun-chat.frontend.chat.history-list?i=2&employee_id=2&page=1&pagesize=10" >"$tmp/h1.json"
if same_json "$tmp/h1.json" "$root/crates/chatstore/data/expected_history_list.json"; then ok; else ko "history-list differs from the first seed: $(cat "$tmp/h1.json")"; fi

curl -s "$base/plugin.yun-chat.frontend.chat.history-list?i=2&employee_id=2&pagesize=2&user_name=" >"$tmp/h2.json"
if grep -q '"next_page_url":"/plugin.yun-chat.frontend.chat.history-list?page=2"' "$tmp/h2.json"; then ok; else ko "next_page_url: $(cat "$tmp/h2.json")"; fi

curl -s -G "$base/plugin.yun-chat.frontend.chat.history-list" --data-urlencode "i=2" --data-urlencode "user_name=小" >"$tmp/h3.json"
if grep -q '"total":1' "$tmp/h3.json" && grep -q '"uid":2671' "$tmp/h3.json"; then ok; else ko "CJK filter: $(cat "$tmp/h3.json")"; fi

hash=5f4dcc3b5aa765d61d8327deb882cf99
curl -s -d "sso_id=218&hash=$hash&page=1" "$base/hischat.php" >"$tmp/c1.json"
"$bin/chatstore" hischat --db "$tmp/db" --sso-id 218 --hash "$hash" >"$tmp/c1.cli.json" 2>/dev/null
if same_json "$tmp/c1.json" "$tmp/c1.cli.json" && grep -q '"status":1' "$tmp/c1.json" && grep -q '"cha_id":"185185"' "$tmp/c1.json"; then ok; else ko "hischat: $(cat "$tmp/c1.json")"; fi

curl -s -d "sso_id=218&page=1" "$base/hischat.php" >"$tmp/c2.json"
echo '{"error":"Khong co ma bao mat","status":0,"history":""}' >"$tmp/c2.want"
if same_json "$tmp/c2.json" "$tmp/c2.want"; then ok; else ko "missing hash: $(cat "$tmp/c2.json")"; fi

curl -s -d "sso_id=218&hash=wrong" "$base/hischat.php" >"$tmp/c3.json"
if grep -q '"status":0' "$tmp/c3.json" && grep -q '"history":""' "$tmp/c3.json"; then ok; else ko "wrong hash: $(cat "$tmp/c3.json")"; fi

code=$(curl -s -o "$tmp/e.json" -w '%{http_code}' "$base/plugin.yun-chat.frontend.chat.history-list?employee_id=2")
if [ "$code" = 400 ] && grep -q 'tenant' "$tmp/e.json"; then ok; else ko "missing tenant: $code $(cat "$tmp/e.json")"; fi

# The README's controller (examples/minimal.php) is the README's code block,
# and works started from another directory.
readme_block="$(awk '/^```php$/{on=1; next} on && /^```$/{exit} on' "$root/bindings/php/README.md")"
if [ "$readme_block" = "$(cat "$root/bindings/php/examples/minimal.php")" ]; then ok; else ko "README's controller differs from examples/minimal.php"; fi
port2=$(php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo explode(":", stream_socket_get_name($s, false))[1];')
(cd "$tmp" && CHATSTORE_DB="$tmp/db" CHATSTORE_LIB="$bin/libchatstore_ffi.so" \
  exec php -d ffi.enable=1 -S "127.0.0.1:$port2" "$root/bindings/php/examples/minimal.php" >"$tmp/minimal.log" 2>&1) &
minimal=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port2/" && break; sleep 0.1; done
base2="http://127.0.0.1:$port2"
curl -s "$base2/plugin.yun-chat.frontend.chat.history-list?i=2&employee_id=2&page=1&pagesize=10" >"$tmp/m1.json"
if same_json "$tmp/m1.json" "$root/crates/chatstore/data/expected_history_list.json"; then ok; else ko "minimal.php history-list: $(cat "$tmp/m1.json")"; fi
code=$(curl -s -o "$tmp/m2.json" -w '%{http_code}' "$base2/plugin.yun-chat.frontend.chat.history-list?employee_id=2")
if [ "$code" = 400 ] && grep -q '"msg":"invalid tenant' "$tmp/m2.json"; then ok; else ko "minimal.php missing tenant: $code $(cat "$tmp/m2.json")"; fi
code=$(curl -s -o "$tmp/m3.json" -w '%{http_code}' "$base2/no/such/path")
if [ "$code" = 404 ] && grep -q '"msg":"no such endpoint"' "$tmp/m3.json"; then ok; else ko "minimal.php unknown path: $code $(cat "$tmp/m3.json")"; fi
curl -s -d "sso_id=218&hash=$hash&page=1" "$base2/hischat.php" >"$tmp/m4.json"
if same_json "$tmp/m4.json" "$tmp/c1.cli.json"; then ok; else ko "minimal.php hischat: $(cat "$tmp/m4.json")"; fi
kill "$minimal" 2>/dev/null

echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
