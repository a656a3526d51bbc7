#!/usr/bin/env bash
# Start or stop the real servers the integration tests use, on 127.0.0.1
# only, on free ports, with throw-away data under DIR:
#   PostgreSQL (initdb + pg_ctl, run as the 'postgres' user when root)
#   Redis      (no persistence)
# `start` writes DIR/servers.env with EE_TEST_POSTGRES_URI and
# EE_TEST_REDIS_URI and exits non-zero if either server cannot start; `stop`
# ends only the processes this script started, by their pid files.
# usage: test-servers.sh start|stop DIR
set -euo pipefail
cmd=${1:?start|stop} dir=${2:?DIR}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || { echo "test-servers: PostgreSQL is not installed (scripts/setup)" >&2; exit 1; }
  echo "$d"
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() {
  local bin port data=$dir/pg
  bin=$(pg_bin); port=$(free_port)
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir" "$data"
  as_pg "$bin/initdb" -D "$data" -U ee -A trust --no-sync >"$dir/pg-initdb.log" 2>&1 \
    || { cat "$dir/pg-initdb.log" >&2; return 1; }
  as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data -c fsync=off -c max_connections=200" \
    start >/dev/null || { cat "$data/server.log" >&2; return 1; }
  as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U ee ee_test
  echo "EE_TEST_POSTGRES_URI=postgres://ee@127.0.0.1:$port/ee_test" >> "$dir/servers.env"
}

start_redis() {
  local port
  port=$(free_port)
  command -v redis-server >/dev/null || { echo "test-servers: redis-server is not installed" >&2; return 1; }
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
  for _ in $(seq 100); do
    redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  redis-cli -h 127.0.0.1 -p "$port" ping | grep -q PONG || { cat "$dir/redis.log" >&2; return 1; }
  echo "EE_TEST_REDIS_URI=redis://127.0.0.1:$port/0" >> "$dir/servers.env"
}

stop_all() {
  if [ -f "$dir/pg/postmaster.pid" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/pg" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/redis.pid" ]; then
    kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    rm -f "$dir/redis.pid"
  fi
}

case $cmd in
  start)
    stop_all
    rm -rf "$dir"; mkdir -p "$dir"; : > "$dir/servers.env"
    start_postgres || { echo "test-servers: PostgreSQL failed to start" >&2; stop_all; exit 1; }
    start_redis || { echo "test-servers: Redis failed to start" >&2; stop_all; exit 1; }
    cat "$dir/servers.env" ;;
  stop) stop_all ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
