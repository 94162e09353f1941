#!/usr/bin/env bash
# Requests per second and latency of the same front controller under PHP-FPM
# behind nginx, on chatstore (examples/server.php through FFI, an LMDB store)
# and on MySQL (bench/server_mysql.php: the platform's Laravel queries on a
# private MariaDB), driven by wrk with history-list only (7 in 10 plain pages
# 1-4, 3 in 10 filtered by user_name: tests/fpm/mix.lua, FPM_MIX=history),
# the same data in both (bench/dataset.php). Both answers are compared first.
#
#   bindings/php/bench/fpm.sh [--members N] [--seconds S] [--json FILE] [TARGET_DIR]
#
# Defaults: 20000 members (40000 sessions), 20 s a side, target/release.
# Needs php8.2-fpm, nginx, wrk and mariadb-server (the MySQL side is
# skipped, saying so, without mariadb-server).
set -uo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
members=20000 seconds=20 json="" bin="$root/target/release"
while [ $# -gt 0 ]; do
  case "$1" in
    --members) members="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    *) bin="$1"; shift ;;
  esac
done
bin="$(cd "$bin" && pwd)"
# shellcheck source=tests/fpm/serve.sh
. "$root/tests/fpm/serve.sh"
pids=()
tmp="$(mktemp -d /tmp/chatstore-fpm-bench.XXXXXX)"
chmod 0711 "$tmp"
mysql_feed=""
cleanup() {
  stop "${pids[@]}"
  [ -n "$mysql_feed" ] && exec 3>&-
  sleep 0.5
  [ -n "${FPM_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
pool="$(id -un)" group="$(id -gn)"
[ "$(id -u)" -eq 0 ] && pool=www-data group=www-data

www="$tmp/www"
deploy_www "$www" "$bin"
php "$www/bindings/php/bench/dataset.php" 1 "$members" >"$tmp/data.jsonl"
install -d -g "$group" -m 2770 "$tmp/shop"
"$www/chatstore" import --group-access --backend lmdb --db "$tmp/shop/chat.db" "$tmp/data.jsonl" 2>/dev/null \
  || { echo "import failed" >&2; exit 1; }

mysql_sock=""
if php -r 'require $argv[1]; exit(MariaDb::missing() === null ? 0 : 1);' "$www/bindings/php/bench/mariadb.php"; then
  exec 3> >(php "$www/bindings/php/bench/mariadb_serve.php" "$tmp/mariadb" "$members")
  mysql_feed=1
  for _ in $(seq 600); do [ -f "$tmp/mariadb/ready" ] && break; sleep 0.1; done
  mysql_sock="$(cat "$tmp/mariadb/ready" 2>/dev/null)"
  [ -n "$mysql_sock" ] || { echo "MariaDB did not start" >&2; exit 1; }
else
  echo "MySQL side skipped: mariadb-server is not installed" >&2
fi

declare -A rps p50 p90 p99 served
run_side() { # NAME SCRIPT ENV...
  local name="$1" script="$2" port
  shift 2
  port="$(free_port)"
  mkdir -p "$tmp/$name/out"
  [ "$(id -u)" -eq 0 ] && chown "$pool" "$tmp/$name/out"
  SERVE_USER="$pool" serve "$tmp/$name" "$port" "$script" 500 "$@" || { echo "$name: nothing answered" >&2; exit 1; }
  local base="http://127.0.0.1:$port/plugin.yun-chat.frontend.chat.history-list"
  curl -s "$base?i=1&employee_id=7&page=2" >"$tmp/$name/page2.json"
  curl -s -G "$base" --data-urlencode i=1 --data-urlencode employee_id=7 --data-urlencode 'user_name=李' >"$tmp/$name/filter.json"
  FPM_OUT="$tmp/$name/out" FPM_MIX=history wrk -t 2 -c 8 -d "${seconds}s" -s "$root/tests/fpm/mix.lua" "http://127.0.0.1:$port" >"$tmp/$name/wrk.out" 2>&1
  local k v
  while read -r k v; do
    case "$k" in
      requests) served[$name]="$v" ;;
      p50_us) p50[$name]="$v" ;;
      p90_us) p90[$name]="$v" ;;
      p99_us) p99[$name]="$v" ;;
      non2xx | socket_errors) [ "$v" = 0 ] || { echo "$name: $v $k" >&2; exit 1; } ;;
    esac
  done <"$tmp/$name/out/summary"
  rps[$name]="$(awk -v n="${served[$name]}" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }')"
  stop "${pids[@]}"
  pids=()
}

run_side chatstore "$www/bindings/php/examples/server.php" \
  CHATSTORE_DB="$tmp/shop/chat.db" CHATSTORE_LIB="$www/libchatstore_ffi.so"
sides=(chatstore)
if [ -n "$mysql_sock" ]; then
  run_side mysql "$www/bindings/php/bench/server_mysql.php" MYSQL_SOCKET="$mysql_sock"
  sides+=(mysql)
  for f in page2 filter; do
    php -r 'exit(json_decode(file_get_contents($argv[1]), true) === json_decode(file_get_contents($argv[2]), true) ? 0 : 1);' \
      "$tmp/chatstore/$f.json" "$tmp/mysql/$f.json" || { echo "chatstore and MySQL answer $f differently" >&2; exit 1; }
  done
fi

printf '%-10s %10s %10s %10s %10s\n' "side" "req/s" "p50 ms" "p90 ms" "p99 ms"
for s in "${sides[@]}"; do
  awk -v s="$s" -v r="${rps[$s]}" -v a="${p50[$s]}" -v b="${p90[$s]}" -v c="${p99[$s]}" \
    'BEGIN { printf "%-10s %10d %10.2f %10.2f %10.2f\n", s, r, a / 1000, b / 1000, c / 1000 }'
done
if [ -n "$json" ]; then
  {
    printf '{"members": %s, "seconds": %s, "workers": %s, "connections": 8, "results": [' "$members" "$seconds" "${SERVE_WORKERS:-4}"
    sep=""
    for s in "${sides[@]}"; do
      printf '%s{"side": "%s", "requests": %s, "rps": %s, "p50_us": %s, "p90_us": %s, "p99_us": %s}' \
        "$sep" "$s" "${served[$s]}" "${rps[$s]}" "${p50[$s]}" "${p90[$s]}" "${p99[$s]}"
      sep=", "
    done
    printf ']}\n'
  } >"$json"
fi
