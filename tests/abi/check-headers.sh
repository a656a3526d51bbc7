#!/usr/bin/env bash
# Every public header compiles on its own: as C99 with -pedantic, and as C++.
# usage: check-headers.sh CC CXX INCLUDE_DIR
set -euo pipefail
cc=$1 cxx=$2 inc=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
for h in "$inc"/execengine/*.h; do
  name=execengine/$(basename "$h")
  printf '#include <%s>\n#include <%s>\nint ee_header_check_%d;\n' "$name" "$name" "$n" > "$tmp/t.c"
  "$cc" -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$inc" "$tmp/t.c" \
    || { echo "FAIL: $name does not compile alone as C99"; exit 1; }
  cp "$tmp/t.c" "$tmp/t.cpp"
  "$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$inc" "$tmp/t.cpp" \
    || { echo "FAIL: $name does not compile alone as C++"; exit 1; }
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "FAIL: no headers found under $inc/execengine"; exit 1; }
echo "$n headers compile alone as C99 and C++ (twice included: guards work)"
