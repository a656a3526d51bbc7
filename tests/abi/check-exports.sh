#!/usr/bin/env bash
# The exported symbols are exactly abi/exports.txt, which is exactly the set
# of EE_API functions declared in the public headers; every one starts with
# ee_; the SONAME is libexecengine.so.<major>.
# usage: check-exports.sh LIBRARY SOURCE_DIR
set -euo pipefail
lib=$1 src=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRWVi]$/ {print $3}' | sed 's/@.*//' \
  | grep -v -x -E 'EE_[0-9.]+' | sort -u > "$tmp/exported"
grep -E '^ee_' "$src/abi/exports.txt" | awk '{print $1}' | sort -u > "$tmp/listed"
grep -hv '^[[:space:]]*#' "$src"/include/execengine/*.h | tr '\n' ' ' | grep -oE 'EE_API[^;{]*\(' \
  | grep -oE '[A-Za-z_][A-Za-z0-9_]*[[:space:]]*\($' | tr -d ' (' | sort -u > "$tmp/declared"

fail=0
if grep -v '^ee_' "$tmp/exported"; then echo "FAIL: symbols above lack the ee_ prefix"; fail=1; fi
if ! diff -u "$tmp/listed" "$tmp/exported"; then
  echo "FAIL: exported symbols (+) differ from abi/exports.txt (-)"; fail=1; fi
if ! diff -u "$tmp/listed" "$tmp/declared"; then
  echo "FAIL: EE_API declarations in include/ (+) differ from abi/exports.txt (-)"; fail=1; fi
major=$(sed -n 's/^#define EE_VERSION_MAJOR \([0-9]*\)/\1/p' "$src/include/execengine/version.h")
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')
if [ "$soname" != "libexecengine.so.$major" ]; then
  echo "FAIL: SONAME is '$soname', expected libexecengine.so.$major"; fail=1; fi
[ "$fail" = 0 ] && echo "exports OK: $(wc -l < "$tmp/exported") ee_ symbols, SONAME $soname"
exit $fail
