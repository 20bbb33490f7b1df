#!/usr/bin/env bash
# Builds the wire-decoder libFuzzer target with clang (tests/fuzz/standalone) and
# runs it for a while on the committed seed corpus. Fails, never skips, when the
# build fails or the fuzzer finds a crash, leak, sanitizer report or timeout.
# Usage: run_wire_fuzz.sh REPO_ROOT WORK_DIR [SECONDS]
set -euo pipefail
src=$(cd "$1" && pwd)
work=$2
secs=${3:-60}
mkdir -p "$work"
work=$(cd "$work" && pwd)

cxx=""
for c in clang++ clang++-14; do
  if command -v "$c" >/dev/null; then cxx=$(command -v "$c"); break; fi
done
if [ -z "$cxx" ]; then
  echo "run_wire_fuzz: clang++ not found (scripts/install-deps.sh installs clang)" >&2
  exit 1
fi
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

echo "== configuring clang fuzz build in $work/build"
cmake -S "$src/tests/fuzz/standalone" -B "$work/build" -G Ninja \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCFS_SOURCE_DIR="$src" "${launcher[@]}" >"$work/configure.log" 2>&1 \
  || { cat "$work/configure.log"; echo "run_wire_fuzz: configure failed" >&2; exit 1; }
echo "== building wire_fuzz"
cmake --build "$work/build" --target wire_fuzz

seeds="$src/tests/fuzz/corpus"
nseeds=$(find "$seeds" -type f | wc -l)
if [ "$nseeds" -eq 0 ]; then
  echo "run_wire_fuzz: no seeds in $seeds" >&2
  exit 1
fi
# New inputs go to a scratch corpus (the first directory); the committed seeds are only read.
rm -rf "$work/corpus" "$work/artifacts"
mkdir -p "$work/corpus" "$work/artifacts"
echo "== fuzzing for ${secs}s from $nseeds seeds"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
set +e
"$work/build/wire_fuzz" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds"
rc=$?
set -e
if [ $rc -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
  echo "run_wire_fuzz: FAILED (exit $rc); reproducers:" >&2
  ls -l "$work/artifacts" >&2
  echo "reproduce with: $work/build/wire_fuzz <file>" >&2
  exit 1
fi
echo "run_wire_fuzz: no crashes in ${secs}s"
