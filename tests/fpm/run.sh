#!/usr/bin/env bash
# chatstore where it will live: a PHP-FPM pool behind nginx, driven by wrk.
#
# For each backend (lmdb, sled) a store is imported by one user with
# `--group-access` into a setgid directory of the pool's group, and served
# by a static pool of PHP-FPM workers running as www-data (workers recycled
# every few requests by pm.max_requests) through nginx, on loopback and Unix
# sockets, with private configurations in a temporary directory. wrk drives
# a bounded mix (history-list with and without user_name, hischat, appends)
# for a fixed time; midway one worker (on sled the one that owns the store)
# is killed with SIGKILL. Checks: no non-2xx answer and no socket error,
# workers were recycled, sampled answers equal the CLI's (run as the
# importing user while the pool serves), `chatstore check` passes, every
# acknowledged append is stored exactly once.
#
# Usage: tests/fpm/run.sh [TARGET_DIR] [SECONDS]   (default: target/debug, 10)
# Needs php8.2-fpm, nginx and wrk (scripts/test installs them). As root the
# pool runs as www-data and the store is imported by the user
# chatstore-deploy (created when missing, a member of www-data); otherwise
# everything runs as the current user and the sharing part is skipped.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(cd "${1:-$root/target/debug}" && pwd)"
seconds="${2:-10}"
backends="${FPM_BACKENDS:-lmdb sled}"
fpm="$(command -v php-fpm8.2 || command -v php-fpm || true)"
for tool in "$fpm" nginx wrk; do
  if [ -z "$tool" ] || ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/fpm/run.sh: needs php-fpm, nginx and wrk (apt install php8.2-fpm nginx wrk)" >&2
    exit 1
  fi
done

# shellcheck source=tests/fpm/serve.sh
. "$root/tests/fpm/serve.sh"
tmp="$(mktemp -d /tmp/chatstore-fpm.XXXXXX)"
chmod 0711 "$tmp" # the pool's user passes through to its files, reads nothing else
pass=0 fail=0
pids=()
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
cleanup() {
  stop "${pids[@]}"
  if [ "$fail" -gt 0 ]; then
    for f in "$tmp"/*/fpm.log "$tmp"/*/nginx-error.log "$tmp"/*/php-errors.log "$tmp"/*/bad-*; do
      [ -s "$f" ] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }
    done
  fi
  [ -n "${FPM_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

# Who is who: the pool's user and group, and the user who imports and
# administers.
if [ "$(id -u)" -eq 0 ]; then
  pool=www-data group=www-data deploy=chatstore-deploy
  if ! id "$deploy" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin --groups "$pool" "$deploy"
  fi
  id -nG "$deploy" | grep -qw "$pool" || usermod -aG "$pool" "$deploy"
  as_deploy() { runuser -u "$deploy" -- "$@"; }
else
  pool="$(id -un)" group="$(id -gn)" deploy="$(id -un)"
  as_deploy() { "$@"; }
  echo "fpm: not root: the pool and the import run as $pool (the sharing between users is not exercised)"
fi

# What the pool serves, readable by it, laid out as a deployment (the
# repository's): the PHP binding and the header it reads, the library, the
# CLI (for the importing user) and the data (the generated shop, the seeds).
www="$tmp/www"
deploy_www "$www" "$bin"
php "$root/bindings/php/bench/dataset.php" 1 1000 >"$www/data.jsonl"
cat "$root/crates/chatstore/data/seeds.jsonl" >>"$www/data.jsonl"
chmod a+r "$www/data.jsonl"
hash=5f4dcc3b5aa765d61d8327deb882cf99
same_json() { php -r 'exit(json_decode(file_get_contents($argv[1]), true) === json_decode(file_get_contents($argv[2]), true) ? 0 : 1);' "$1" "$2"; }

run_backend() {
  local backend="$1" d="$tmp/$1"
  local shop="$d/shop" db="$d/shop/chat.db" port
  port="$(free_port)"
  mkdir -p "$d/out"
  # The shared directory: the deploy user's, the pool's group, setgid so
  # everything made in it takes that group.
  install -d -o "$deploy" -g "$group" -m 2770 "$shop" || { ko "$backend: cannot make $shop"; return; }
  [ "$(id -u)" -eq 0 ] && chown "$pool" "$d/out"
  if ! as_deploy "$www/chatstore" import --group-access --backend "$backend" --db "$db" "$www/data.jsonl" 2>"$d/import.err"; then
    ko "$backend: import: $(cat "$d/import.err")"; return
  fi
  local modes
  modes="$(stat -c '%a %G' "$db") $(find "$db" -maxdepth 1 -type f -printf '%m %g\n' | sort -u | tr '\n' ' ')"
  if [ "$modes" = "2770 $group 660 $group " ]; then ok; else ko "$backend: the store's modes and groups: $modes"; fi

  if ! SERVE_USER="$pool" serve "$d" "$port" "$www/bindings/php/examples/server.php" 40 \
    CHATSTORE_DB="$db" CHATSTORE_LIB="$www/libchatstore_ffi.so" CHATSTORE_DURABILITY=sync; then
    ko "$backend: the pool never answered"; return
  fi
  local master="$SERVE_MASTER" base="http://127.0.0.1:$port"

  # The load, with one worker killed a third of the way in.
  FPM_OUT="$d/out" wrk -t 2 -c 8 -d "${seconds}s" -s "$root/tests/fpm/mix.lua" "$base" >"$d/wrk.out" 2>&1 &
  local wrk=$!
  sleep "$((seconds / 3))"
  # Workers live a fraction of a second (recycled every 40 requests): the
  # one chosen may have exited on its own before the signal; then another.
  local victim="" killed=""
  for _ in $(seq 20); do
    if [ "$backend" = sled ]; then
      # The owner: the worker holding the owner's lock.
      local inode
      inode="$(stat -c %i "$db/chatstore.lock" 2>/dev/null)"
      victim="$(awk -v i=":$inode\$" '$2 == "FLOCK" && $6 ~ i { print $5 }' /proc/locks | head -n 1)"
    else
      victim="$(pgrep -P "$master" | head -n 1)"
    fi
    [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null
    sleep 0.3
    if [ -n "$victim" ] && grep -q "child $victim exited on signal 9" "$d/fpm.log"; then killed="$victim"; break; fi
  done
  if [ -n "$killed" ]; then ok; else ko "$backend: no worker was killed (last tried: '$victim')"; fi
  wait "$wrk"
  declare -A s=()
  while read -r k v; do s[$k]="$v"; done <"$d/out/summary"
  echo "fpm $backend: ${s[requests]} requests in ${s[seconds]} s, p50 ${s[p50_us]} us, p99 ${s[p99_us]} us; killed worker $killed"
  if [ "${s[non2xx]}" = 0 ] && [ "${s[socket_errors]}" = 0 ] && [ -z "$(cat "$d"/out/bad-*)" ]; then ok; else
    ko "$backend: ${s[non2xx]} non-2xx, ${s[socket_errors]} socket errors: $(head -n 3 "$d"/out/bad-*)"
  fi
  if [ "${s[requests]}" -ge 100 ]; then ok; else ko "$backend: only ${s[requests]} requests"; fi
  local started
  started="$(grep -c 'child [0-9]* started' "$d/fpm.log")"
  if [ "$started" -gt 5 ] && grep -q 'exited with code 0' "$d/fpm.log"; then ok; else
    ko "$backend: workers were not recycled ($started started): $(tail -n 5 "$d/fpm.log")"
  fi

  # Sampled answers equal the CLI's, asked by the importing user while the
  # pool serves the store (on sled through its owner, a www-data worker).
  local cli=("$www/chatstore" --attach-timeout-ms 30000)
  curl -s "$base/plugin.yun-chat.frontend.chat.history-list?i=1&employee_id=7&page=2&pagesize=10" >"$d/h1.json"
  as_deploy "${cli[@]}" history-list --db "$db" --tenant 1 --employee 7 --page 2 --pagesize 10 \
    --page-url /plugin.yun-chat.frontend.chat.history-list --media-base http://localhost:82 >"$d/h1.cli.json" 2>"$d/cli.err"
  if same_json "$d/h1.json" "$d/h1.cli.json" && grep -q '"total":' "$d/h1.json"; then ok; else ko "$backend: history-list: $(head -c 300 "$d/h1.json") vs CLI $(head -c 300 "$d/h1.cli.json") $(cat "$d/cli.err")"; fi
  curl -s -G "$base/plugin.yun-chat.frontend.chat.history-list" --data-urlencode i=1 --data-urlencode employee_id=3 --data-urlencode 'user_name=李' >"$d/h2.json"
  as_deploy "${cli[@]}" history-list --db "$db" --tenant 1 --employee 3 --user-name '李' \
    --page-url /plugin.yun-chat.frontend.chat.history-list --media-base http://localhost:82 >"$d/h2.cli.json" 2>"$d/cli.err"
  if same_json "$d/h2.json" "$d/h2.cli.json" && grep -q '"total":[1-9]' "$d/h2.json"; then ok; else ko "$backend: filtered history-list: $(head -c 300 "$d/h2.json") vs CLI $(head -c 300 "$d/h2.cli.json") $(cat "$d/cli.err")"; fi
  curl -s -d "sso_id=218&hash=$hash&page=1" "$base/hischat.php" >"$d/c1.json"
  as_deploy "${cli[@]}" hischat --db "$db" --sso-id 218 --hash "$hash" >"$d/c1.cli.json" 2>"$d/cli.err"
  if same_json "$d/c1.json" "$d/c1.cli.json" && grep -q '"status":1' "$d/c1.json"; then ok; else ko "$backend: hischat: $(head -c 300 "$d/c1.json") vs CLI $(cat "$d/cli.err")"; fi
  if as_deploy "${cli[@]}" check --db "$db" >"$d/check.out" 2>&1; then ok; else ko "$backend: check while serving: $(cat "$d/check.out")"; fi

  stop "${pids[@]}"
  pids=()
  if as_deploy "${cli[@]}" check --db "$db" >"$d/check.out" 2>&1; then ok; else ko "$backend: check after: $(cat "$d/check.out")"; fi
  # Every acknowledged append once, with its content.
  as_deploy "${cli[@]}" export --db "$db" >"$d/export.jsonl" 2>"$d/cli.err" || ko "$backend: export: $(cat "$d/cli.err")"
  if php -r '
    $seen = [];
    foreach (new SplFileObject($argv[1]) as $line) {
      if ($line === "" || !str_contains($line, "\"fpm-")) continue;
      $r = json_decode($line, true);
      if (($r["kind"] ?? "") !== "message" || $r["tenant"] !== 1) continue;
      $seen[$r["content"]] = ($seen[$r["content"]] ?? 0) + 1;
      if ($r["content"] !== "fpm-" . $r["id"]) { fwrite(STDERR, "message {$r["id"]} holds {$r["content"]}\n"); exit(1); }
    }
    $acked = 0; $bad = 0;
    foreach (glob($argv[2] . "/acks-*") as $f) {
      foreach (file($f, FILE_IGNORE_NEW_LINES) as $id) {
        $acked++;
        if (($seen["fpm-$id"] ?? 0) !== 1) { fwrite(STDERR, "acknowledged append $id stored " . ($seen["fpm-$id"] ?? 0) . " times\n"); $bad++; }
      }
    }
    echo "fpm: $acked acknowledged appends, each stored once; " . count($seen) . " stored\n";
    exit($bad === 0 && $acked > 0 ? 0 : 1);
  ' "$d/export.jsonl" "$d/out"; then ok; else ko "$backend: appends"; fi
}

for b in $backends; do
  run_backend "$b"
done
echo "fpm: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
