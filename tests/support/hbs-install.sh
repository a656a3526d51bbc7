#!/usr/bin/env bash
# Install handlebars.js (the reference renderer for tests/data/handlebars and
# bench template.render) from npm into a cache kept between runs, the way
# tests/support/n8n/harness.sh installs n8n:
#   ${EE_N8N_CACHE_DIR:-/var/cache/libexecengine}/handlebars-<version>
# (else ~/.cache/libexecengine). Idempotent; prints the node_modules folder.
# Exit 77 (skip) when node or npm is missing or the install fails.
set -euo pipefail
HBS_VERSION=4.7.8
command -v node >/dev/null && command -v npm >/dev/null || { echo "hbs-install: node/npm not found" >&2; exit 77; }
c=${EE_N8N_CACHE_DIR:-/var/cache/libexecengine}
if ! mkdir -p "$c" 2>/dev/null || [ ! -w "$c" ]; then
  c=${XDG_CACHE_HOME:-$HOME/.cache}/libexecengine
  mkdir -p "$c"
fi
dir=$c/handlebars-$HBS_VERSION
if [ ! -f "$dir/.ee-complete" ]; then
  exec 9>"$c/handlebars-$HBS_VERSION.lock"
  flock -w 300 9
  if [ ! -f "$dir/.ee-complete" ]; then
    stage=$dir.staging.$$
    rm -rf "$stage"; mkdir -p "$stage"
    if ! (cd "$stage" && npm_config_update_notifier=false npm install --no-save --no-audit --no-fund \
            --ignore-scripts --loglevel=error "handlebars@$HBS_VERSION") >"$stage.log" 2>&1; then
      tail -n 20 "$stage.log" >&2; rm -rf "$stage"
      echo "hbs-install: npm install handlebars@$HBS_VERSION failed" >&2; exit 77
    fi
    echo "$HBS_VERSION" >"$stage/.ee-complete"
    rm -rf "$dir"; mv "$stage" "$dir"; rm -f "$stage.log"
  fi
fi
echo "$dir/node_modules"
