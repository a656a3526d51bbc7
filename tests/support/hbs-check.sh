#!/usr/bin/env bash
# ctest handlebars.reference: re-render tests/data/handlebars/cases.json with
# handlebars.js and fail if it disagrees with the committed expected.json
# (so the expectations the unit test compares against cannot drift).
# Regenerate after editing cases.json:
#   NODE_PATH=$(tests/support/hbs-install.sh) node tests/support/hbs-reference.js \
#     render tests/data/handlebars/cases.json tests/data/handlebars/expected.json
# Exit 77 (skipped) when node or the npm registry is unavailable.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$(dirname "$here")")
modules=$("$here/hbs-install.sh") || exit 77
NODE_PATH=$modules exec node "$here/hbs-reference.js" check \
  "$src/tests/data/handlebars/cases.json" "$src/tests/data/handlebars/expected.json"
