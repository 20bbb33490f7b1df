#!/usr/bin/env bash
# Profiles fio jobs against a fresh 6-worker local CFS cluster (or, with
# --target, a peer: gluster, bindfs, local) with
# `perf record -a` (whole machine, cpu-clock sampling) and prints, per job, the
# CPU share of each process and the hottest symbols of the CFS processes.
# This is how docs/benchmarks.md explains a missed target.
#
#   bench/profile.sh [--target cfs|gluster|bindfs|local] [--build DIR] [--out DIR]
#                    [--nice N] JOB...
#
# JOB is a name from bench/fio/ (e.g. seq-write-4jobs). Jobs run in the order
# given on one cluster, so list a write job before the read of its files.
# Each job's perf data is kept in OUT/JOB.perf.data for perf report.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=$REPO/build-bench
OUT=/var/tmp/cfs-bench-profile
NICE=0
TARGET=cfs
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --nice) NICE=$2; shift 2 ;;
    --target) TARGET=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "profile.sh: name at least one job" >&2; exit 2; }
command -v perf >/dev/null || { echo "profile.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
[ "$NICE" != 0 ] && renice -n "$NICE" -p $$ >/dev/null
export RUNTIME=${RUNTIME:-15} SEQ_SIZE_1=${SEQ_SIZE_1:-2g} SEQ_SIZE_4=${SEQ_SIZE_4:-512m} \
  RAND_SIZE=${RAND_SIZE:-1g} MD_FILES=${MD_FILES:-2000} MAX_RUNTIME=${MAX_RUNTIME:-120}
D=$OUT/$TARGET
M=$OUT/mnt-$TARGET
mkdir -p "$OUT"
down() {
  case "$TARGET" in
    cfs) timeout 60 "$BUILD/bin/cfs" local down --dir "$D" >/dev/null 2>&1 ;;
    gluster) "$HERE/gluster.sh" down --dir "$D" --mount "$M" >/dev/null 2>&1 ;;
  esac
  mountpoint -q "$M" && umount -l "$M"
  rm -rf "$D"
}
trap down EXIT
down
mkdir -p "$M"
case "$TARGET" in
  cfs) timeout 120 "$BUILD/bin/cfs" local up --dir "$D" --mount "$M" --workers 6 --stripe "${CFS_STRIPE:-6+0}" >"$OUT/up.log" 2>&1 ;;
  gluster) "$HERE/gluster.sh" up --dir "$D" --mount "$M" >"$OUT/up.log" 2>&1 ;;
  bindfs) mkdir -p "$D" && bindfs -o big_writes "$D" "$M" >"$OUT/up.log" 2>&1 ;;
  local) rmdir "$M"; mkdir -p "$D"; M=$D ;;
  *) echo "profile.sh: unknown target $TARGET" >&2; exit 2 ;;
esac || { echo "profile.sh: setting up $TARGET failed:"; tail -5 "$OUT/up.log"; exit 1; }
for job in "$@"; do
  case "$job" in *read*) sync; echo 3 > /proc/sys/vm/drop_caches ;; *) sync ;; esac
  echo "=== $job"
  BENCH_DIR=$M perf record -e cpu-clock -a -g -o "$OUT/$job.perf.data" -- \
    fio --output-format=json --output="$OUT/$job.json" "$HERE/fio/$job.fio" 2>"$OUT/$job.perf.log"
  python3 "$HERE/report.py" --one "$OUT/$job.json"
  echo "--- CPU share by process (100% = one CPU busy for the whole job x number of CPUs)"
  perf report -i "$OUT/$job.perf.data" --stdio --no-children --sort comm -g none 2>/dev/null \
    | grep -E '^ +[0-9]' | head -8
  echo "--- hottest symbols outside the compiler (other work on the machine)"
  perf report -i "$OUT/$job.perf.data" --stdio --no-children --sort comm,dso,sym -g none 2>/dev/null \
    | grep -E '^ +[0-9]' | grep -vE ' (cc1plus|as|ld|ccache|cmake|make|ninja|swapper) ' | head -25 | cut -c1-180
done
