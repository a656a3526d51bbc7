#!/usr/bin/env bash
# Install the build into a temporary prefix, check what was installed, and
# build and run examples/consumer against it three ways: pkg-config (shared),
# pkg-config --static, and CMake find_package(execengine).
# usage: consumer.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
cc=${CC:-cc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
pc=$(find "$prefix" -name execengine.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: execengine.pc not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir execengine)
so=$(readlink -f "$libdir/libexecengine.so")
[ -f "$libdir/libexecengine.a" ] || { echo "FAIL: static library not installed"; exit 1; }
[ -f "$prefix/include/execengine/execengine.h" ] || { echo "FAIL: headers not installed"; exit 1; }

# The optional backends: the static link line lists a backend's library
# exactly when the build has it (features, as ee_version_features()), and so
# does the shared library's NEEDED list; the CMake package says the same.
features=$(pkg-config --variable=features execengine)
static_libs=" $(pkg-config --libs --static execengine) "
needed_libs=$(readelf -d "$so" | grep NEEDED || true)
for pair in postgres:pq redis:hiredis; do
  feature=${pair%%:*} lib=${pair#*:}
  want=no; [[ " $features " == *" $feature "* ]] && want=yes
  listed=no; [[ "$static_libs" == *" -l$lib "* ]] && listed=yes
  needed=no; [[ "$needed_libs" == *"[lib$lib."* ]] && needed=yes
  [ "$listed" = "$want" ] && [ "$needed" = "$want" ] \
    || { echo "FAIL: features '$features': $feature built $want, -l$lib in .pc $listed, NEEDED $needed"; exit 1; }
done
grep -q "set(execengine_FEATURES \"${features// /;}\")" "$prefix"/lib*/cmake/execengine/execengineConfig.cmake \
  || { echo "FAIL: execengineConfig.cmake does not list the features '$features'"; exit 1; }
echo "ok: features '$features' in .pc, CMake package and links"

bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRWVi]$/ {print $3}' | sed 's/@.*//' \
      | grep -v -x -E 'EE_[0-9.]+' | grep -v '^ee_' || true)
[ -z "$bad" ] || { echo "FAIL: installed library exports non-ee_ symbols: $bad"; exit 1; }
soname=$(objdump -p "$so" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = libexecengine.so.0 ] || { echo "FAIL: SONAME '$soname'"; exit 1; }

# Installed programs carry a RUNPATH to the library installed beside them:
# they run from any prefix without ldconfig or LD_LIBRARY_PATH.
for tool in execengine-server execengine; do
  if [ -x "$build/examples/$tool" ] && [ ! -x "$prefix/bin/$tool" ]; then
    echo "FAIL: $tool is built but not installed"; exit 1; fi
done
for prog in "$prefix"/bin/execengine*; do
  [ -x "$prog" ] || continue
  resolved=$(env -u LD_LIBRARY_PATH ldd "$prog" | awk '/libexecengine/ {print $3}')
  case $resolved in
    "$prefix"/*) echo "ok: $(basename "$prog") loads $resolved" ;;
    *) echo "FAIL: installed $(basename "$prog") resolves libexecengine to '$resolved', not under $prefix"; exit 1 ;;
  esac
done
# The tools install beside each other in bindir: `execengine serve` execs
# the execengine-server next to itself (docs/cli.md).
if [ -x "$build/examples/execengine" ]; then
  env -u LD_LIBRARY_PATH "$prefix/bin/execengine" version | grep -q '^execengine [0-9]' \
    || { echo "FAIL: the installed execengine does not run"; exit 1; }
  echo "ok: execengine runs from $prefix/bin"
fi

check_run() { # name, binary
  out=$("$2") || { echo "FAIL: $1 consumer exited non-zero"; exit 1; }
  grep -q '^rejected as expected: EE_EINVAL: option MAX_CONCURRENT_EXECUTIONS' <<<"$out" \
    || { echo "FAIL: $1 consumer output: $out"; exit 1; }
  grep -q '^libexecengine [0-9]*\.[0-9]*\.[0-9]*: {"version"' <<<"$out" \
    || { echo "FAIL: $1 consumer output: $out"; exit 1; }
  echo "ok: $1 consumer"
}

# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -Werror -o "$tmp/consumer-pc" "$src/examples/consumer/consumer.c" \
  $(pkg-config --cflags --libs execengine) -Wl,-rpath,"$libdir"
check_run pkg-config "$tmp/consumer-pc"

# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -Werror -o "$tmp/consumer-static" "$src/examples/consumer/consumer.c" \
  $(pkg-config --cflags execengine) -L"$libdir" -Wl,-Bstatic -lexecengine -Wl,-Bdynamic \
  $(pkg-config --libs --static execengine | sed 's/-lexecengine//; s/-L[^ ]*//g')
if ldd "$tmp/consumer-static" | grep -q libexecengine; then
  echo "FAIL: static consumer still needs libexecengine.so"; exit 1; fi
check_run pkg-config-static "$tmp/consumer-static"

cmake -S "$src/examples/consumer" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" > "$tmp/cmake.log" || { cat "$tmp/cmake.log"; exit 1; }
cmake --build "$tmp/cmake-build" > "$tmp/build.log" || { cat "$tmp/build.log"; exit 1; }
check_run cmake "$tmp/cmake-build/consumer"
