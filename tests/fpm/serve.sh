# Sourced by tests/fpm/run.sh and bindings/php/bench/fpm.sh: a PHP-FPM pool
# behind nginx, with private configurations in a directory of their own.
#
#   serve DIR PORT SCRIPT MAX_REQUESTS [NAME=VALUE...]
#
# writes DIR/fpm.conf and DIR/nginx.conf, starts a static pool of
# $SERVE_WORKERS (default 4) workers serving SCRIPT (recycled every
# MAX_REQUESTS requests; NAME=VALUE are the workers' environment, FFI
# enabled) and nginx on 127.0.0.1:PORT in front of it, and waits (at most
# 10 s) for a history-list to answer 200. The pool runs as $SERVE_USER when
# this is root (the pool's user reads SCRIPT and its files itself). Appends
# the two processes to the array `pids`; SERVE_MASTER is the pool's master.
# Returns 1 when nothing answered.

serve() {
  local d="$1" port="$2" script="$3" max_requests="$4"
  shift 4
  local fpm
  fpm="$(command -v php-fpm8.2 || command -v php-fpm)"
  mkdir -p "$d/run" "$d/nginx"
  touch "$d/php-errors.log"
  local user_lines="" listen_lines="" nginx_user="" env_lines=""
  if [ "$(id -u)" -eq 0 ]; then
    chown "${SERVE_USER:-www-data}" "$d/php-errors.log" "$d/nginx"
    user_lines="user = ${SERVE_USER:-www-data}
group = ${SERVE_USER:-www-data}"
    listen_lines="listen.owner = ${SERVE_USER:-www-data}
listen.group = ${SERVE_USER:-www-data}
listen.mode = 0660"
    nginx_user="user ${SERVE_USER:-www-data} ${SERVE_USER:-www-data};"
  fi
  local kv
  for kv in "$@"; do
    env_lines+="env[${kv%%=*}] = ${kv#*=}
"
  done
  cat >"$d/fpm.conf" <<CONF
[global]
pid = $d/fpm.pid
error_log = $d/fpm.log
log_level = notice
daemonize = no

[chatstore]
$user_lines
listen = $d/run/fpm.sock
$listen_lines
pm = static
pm.max_children = ${SERVE_WORKERS:-4}
pm.max_requests = $max_requests
request_terminate_timeout = 30s
clear_env = yes
catch_workers_output = yes
$env_lines
php_admin_value[ffi.enable] = 1
php_admin_flag[log_errors] = on
php_admin_value[error_log] = $d/php-errors.log
CONF
  cat >"$d/nginx.conf" <<CONF
$nginx_user
worker_processes 1;
pid $d/nginx.pid;
error_log $d/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $d/nginx/body;
  fastcgi_temp_path $d/nginx/fastcgi;
  proxy_temp_path $d/nginx/proxy;
  uwsgi_temp_path $d/nginx/uwsgi;
  scgi_temp_path $d/nginx/scgi;
  # The pool twice: a request whose worker died before answering is sent
  # once more (appends carry their id, so a retried one is stored once).
  upstream chatstore_pool {
    server unix:$d/run/fpm.sock max_fails=0;
    server unix:$d/run/fpm.sock max_fails=0;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $script;
      fastcgi_pass chatstore_pool;
      fastcgi_next_upstream error timeout invalid_header non_idempotent;
      fastcgi_next_upstream_tries 2;
    }
  }
}
CONF
  chmod 600 "$d/fpm.conf" "$d/nginx.conf" # read by the masters, this user's
  "$fpm" -F -y "$d/fpm.conf" -p "$d" >"$d/fpm.out" 2>&1 &
  SERVE_MASTER=$!
  pids+=("$SERVE_MASTER")
  nginx -e "$d/nginx-error.log" -p "$d" -c "$d/nginx.conf" -g 'daemon off;' >"$d/nginx.out" 2>&1 &
  pids+=($!)
  local _
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/plugin.yun-chat.frontend.chat.history-list?i=1&employee_id=1")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

# stop PID...: TERM, then KILL after 5 s.
stop() {
  local p _
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for p in "$@"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
}

# free_port: a TCP port of 127.0.0.1 nobody listens on.
free_port() { php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo explode(":", stream_socket_get_name($s, false))[1];'; }

# deploy_www WWW BIN: what a pool serves, readable by it, laid out as the
# repository (the PHP binding, the header it reads, bench/), with the
# library and the CLI of the build directory BIN beside.
deploy_www() {
  local www="$1" bin="$2" root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  mkdir -p "$www/bindings/php" "$www/include"
  cp -r "$root/bindings/php/autoload.php" "$root/bindings/php/src" "$root/bindings/php/examples" \
    "$root/bindings/php/bench" "$www/bindings/php/"
  cp "$root/include/chatstore_php.h" "$www/include/"
  cp "$bin/libchatstore_ffi.so" "$bin/chatstore" "$www/"
  chmod -R a+rX "$www"
}
