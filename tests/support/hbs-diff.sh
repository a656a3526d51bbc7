#!/usr/bin/env bash
# ctest handlebars.differential: 2,000 random templates (seed 1, the same
# every run) rendered by handlebars.js and by the library through DRIVER
# (hbs_drive); fails on any divergence, printed minimised. More cases:
#   NODE_PATH=$(tests/support/hbs-install.sh) node tests/support/hbs-diff.js \
#     build/release/tests/hbs_drive 40000 7 --minimise 20
# Exit 77 (skipped) when node or the npm registry is unavailable.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
driver=$1
modules=$("$here/hbs-install.sh") || exit 77
NODE_PATH=$modules exec node "$here/hbs-diff.js" "$driver" "${2:-2000}" "${3:-1}" --minimise 5
