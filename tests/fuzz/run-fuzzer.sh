#!/usr/bin/env bash
# Run one libFuzzer target for a bounded time over a scratch copy of its
# seed corpus. libFuzzer exits non-zero on a crash, leak, timeout or
# sanitizer report, and so does this script.
# usage: run-fuzzer.sh BINARY CORPUS_DIR SCRATCH_DIR SECONDS [LIBFUZZER_FLAG...]
# (the extra flags are the target's EE_FUZZ_FLAGS_<name>, CMakeLists.txt)
set -euo pipefail
bin=$1 corpus=$2 scratch=$3 secs=$4
shift 4
rm -rf "$scratch"; mkdir -p "$scratch/corpus" "$scratch/artifacts"
[ -d "$corpus" ] && cp -r "$corpus"/. "$scratch/corpus/" 2>/dev/null || true
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$scratch/artifacts/" "$@" "$scratch/corpus"
