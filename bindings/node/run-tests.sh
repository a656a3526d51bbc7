#!/bin/sh
# Run the Node binding's tests (ctest bindings.node). Installs koffi from
# package-lock.json first when node_modules is missing: from npm's cache when
# it can (--offline), else from the registry. koffi's native code comes from
# its platform package (@koromix/koffi-<os>-<cpu>), so no install script has
# to run. flock keeps two build trees from installing at the same time.
set -eu
cd "$(dirname "$0")"
install_deps() {
    [ -f node_modules/koffi/package.json ] && return 0
    npm ci --offline --ignore-scripts --no-audit --no-fund >/dev/null 2>&1 ||
        npm ci --ignore-scripts --no-audit --no-fund
}
if [ ! -f node_modules/koffi/package.json ]; then
    if command -v flock >/dev/null 2>&1; then
        # flock on package.json itself: no lock file left in the tree.
        exec 9<package.json
        flock 9
    fi
    install_deps
fi
# --deps-only: install koffi and stop (tests that run the binding elsewhere)
[ "${1:-}" = --deps-only ] && exit 0
exec node --test test/
