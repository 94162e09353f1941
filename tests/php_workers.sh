#!/usr/bin/env bash
# Many PHP processes, one store, as under PHP-FPM: WORKERS php processes each
# make REQUESTS requests, opening and closing the store per request
# (tests/php_worker.php). Midway a worker is killed with SIGKILL: on an LMDB
# store (the default) any worker, since each opens the store itself and none
# serves the others; on a sled store (CHATSTORE_BACKEND=sled) the one that
# owns it, and another takes over. At the end `chatstore check` passes and
# every acknowledged append is in the store exactly once (on LMDB the killed
# worker's too).
# Usage: tests/php_workers.sh [TARGET_DIR]   (default: target/debug)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/debug}"
tmp="$(mktemp -d)"
workers=4 requests=60
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

"$bin/chatstore" import --db "$tmp/db" "$root/crates/chatstore/data/seeds.jsonl" 2>/dev/null || { echo "import failed" >&2; exit 1; }
export CHATSTORE_LIB="$bin/libchatstore_ffi.so"
for w in $(seq 0 $((workers - 1))); do
  php -d ffi.enable=1 "$root/tests/php_worker.php" "$tmp/db" "$w" "$requests" "$tmp/log-$w" 2>"$tmp/err-$w" &
  pids+=($!)
done
lmdb=""; [ -f "$tmp/db/data.mdb" ] && lmdb=1
# Kill a worker (on sled the owner of the moment) once a sixth of the appends
# are acknowledged.
for _ in $(seq 600); do
  [ "$(cat "$tmp"/log-* 2>/dev/null | grep -c '^ack')" -ge $((workers * requests / 18)) ] && break
  sleep 0.05
done
if [ -n "$lmdb" ]; then
  owner="${pids[0]}"
else
  owner=$(cat "$tmp"/log-* 2>/dev/null | grep '^owner' | sort -k3 -n | tail -n 1 | cut -d' ' -f2)
fi
killed=""
for w in $(seq 0 $((workers - 1))); do
  if [ -n "$owner" ] && [ "${pids[$w]}" = "$owner" ]; then killed=$w; fi
done
if [ -n "$killed" ]; then kill -9 "$owner"; ok; else ko "no worker owned the store (owner pid: '$owner')"; fi
for w in $(seq 0 $((workers - 1))); do
  wait "${pids[$w]}" 2>/dev/null; rc=$?  # no "Killed" line for the worker killed on purpose
  if [ "$w" = "$killed" ]; then continue; fi
  if [ "$rc" = 0 ]; then ok; else ko "worker $w exited $rc: $(cat "$tmp/err-$w")"; fi
done
pids=()

if "$bin/chatstore" check --db "$tmp/db" >/dev/null 2>&1; then ok; else ko "check failed"; fi
"$bin/chatstore" messages --db "$tmp/db" --tenant 2 --session 4 --pagesize 100 >"$tmp/messages.json" 2>"$tmp/messages.err" || ko "messages: $(cat "$tmp/messages.err")"
# Acknowledged appends (the killed owner's own buffered ones aside) appear
# exactly once; no append appears twice.
php -r '
  $m = json_decode(file_get_contents($argv[1]), true)["data"];
  $seen = array_count_values(array_column($m, "content"));
  $killed = $argv[2];
  $bad = 0; $checked = 0;
  foreach ($seen as $c => $n) { if ($n > 1) { fwrite(STDERR, "$c landed $n times\n"); $bad++; } }
  foreach (array_slice($argv, 3) as $log) {
    $w = substr($log, strrpos($log, "-") + 1);
    foreach (file($log, FILE_IGNORE_NEW_LINES) as $line) {
      if (strncmp($line, "ack ", 4) !== 0) continue;
      [, $c, $via] = explode(" ", $line);
      if ($w === $killed && $via === "owner") continue;
      $checked++;
      if (($seen[$c] ?? 0) !== 1) { fwrite(STDERR, "acknowledged $c missing\n"); $bad++; }
    }
  }
  echo "$checked acknowledged appends checked\n";
  exit($bad === 0 && $checked > 0 ? 0 : 1);
' "$tmp/messages.json" "$killed" "$tmp"/log-* && ok || ko "appends"
if [ -z "$lmdb" ]; then
  owners=$(cat "$tmp"/log-* | grep '^owner' | cut -d' ' -f2 | sort -u | wc -l)
  if [ "$owners" -ge 2 ]; then ok; else ko "ownership never moved ($owners owner)"; fi
fi
echo "php workers: $pass passed, $fail failed"
[ "$fail" = 0 ]
