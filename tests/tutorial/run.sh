#!/usr/bin/env bash
# The tutorial (docs/tutorial.md), followed as written, against the real n8n
# of the test fixture: run one language's first-run program with the
# environment the tutorial sets, and check that the echo workflow completed
# with 2 + 3 = 5 and cost nothing.
# usage: run.sh N8N_ENV_FILE COMMAND...
# (EE_TUTORIAL_NODE_PACKAGE=DIR: the Node package `require('execengine')`
# finds, as `npm install DIR` would make it)
set -euo pipefail
env_file=$1; shift
[ -s "$env_file" ] || { echo "FAIL: no n8n env file $env_file (n8n.start failed?)"; exit 1; }
N8N_BASE_URL=$(sed -n 's/^EE_TEST_N8N_URL=//p' "$env_file")
N8N_API_KEY=$(sed -n 's/^EE_TEST_N8N_API_KEY=//p' "$env_file")
[ -n "$N8N_BASE_URL" ] && [ -n "$N8N_API_KEY" ] || { echo "FAIL: $env_file lacks the n8n URL or key"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export N8N_BASE_URL N8N_API_KEY
if [ -n "${EE_TUTORIAL_NODE_PACKAGE:-}" ]; then
  mkdir -p "$tmp/node_modules"
  ln -s "$EE_TUTORIAL_NODE_PACKAGE" "$tmp/node_modules/execengine"
  export NODE_PATH=$tmp/node_modules
fi
export API_KEY_ENCRYPTION_SECRET=tutorial-only-0123456789abcdef0123456789abcdef
export EE_STORAGE_URI=sqlite://$tmp/tutorial.db
out=$("$@" echo 2>"$tmp/stderr") || { echo "FAIL: $* exited non-zero"; cat "$tmp/stderr"; echo "$out"; exit 1; }
echo "$out"
grep -q '^workflow [0-9a-f]\{24\}: ee-test echo$' <<<"$out" || { echo "FAIL: the echo workflow was not found"; exit 1; }
grep -q '^execution [0-9a-f]\{24\}: completed$' <<<"$out" || { echo "FAIL: the run did not complete"; exit 1; }
python3 - "$out" <<'PY' || exit 1
import json, sys
lines = {l.split(": ", 1)[0]: l.split(": ", 1)[1] for l in sys.argv[1].splitlines() if ": " in l}
res, cost = json.loads(lines["results"]), json.loads(lines["cost"])
total = res["outputData"]["total"]
if total != 5:
    sys.exit("FAIL: results total %r, expected 5" % total)
if cost["totals"]["cost"] != 0:
    sys.exit("FAIL: cost %r, expected 0" % cost["totals"])
print("ok: the echo workflow completed with total 5 at cost 0")
PY
