#!/usr/bin/env bash
# Checkpoint benchmarks of issue 4 (point 9), all in one run on one 6-worker
# `cfs local` cluster (default layout 4+2, 1 MiB units) on this machine:
#
#   iperf     loopback TCP bandwidth (iperf3, 1 stream), the network limit of the
#             run; a 2 GiB dd into the page cache (CPU s/GiB of a local write);
#             and fio O_DIRECT writes to the disk (6 jobs), the disk limit
#   ckpt      cfs-ckpt-bench: 8 writer processes, N-to-N and N-to-1, 1 MiB and
#             16 MiB requests, through libcfs async (cfs_ioq, depth 16),
#             libcfs sync (cfs_pwrite) and the FUSE mount (pwrite); each run
#             ends when the set is fsynced, closed (and for libcfs committed)
#   fio       fio with the libcfs engine (bench/fio/cfs-nton-8jobs-*.fio)
#             against fio psync on the mount (bench/fio/psync-nton-8jobs-*.fio)
#
#   bench/ckpt.sh [--build DIR] [--work DIR] [--out DIR] [--size PER-WRITER]
#                 [--repeat N] [--steps iperf,ckpt,fio]
#
# CPU per GiB: the writers' user+system time (getrusage of the children, or
# fio's usr+sys), plus for FUSE runs the cfs-fuse daemon's time from /proc,
# since that is where a mount's client work happens. The S-workers' time is
# recorded apart (cpu/*.json): on this one machine they share the 2 CPUs.
# Results: OUT (default bench/results/ckpt-<date>/) with raw/*.json, results.md.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=$REPO/build-bench
WORK=/var/tmp/cfs-bench-ckpt
OUT=""
SIZE=256M
REPEAT=1
STEPS=iperf,ckpt,fio
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$REPO/bench/results/ckpt-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/raw" "$OUT/cpu" "$OUT/log"
CFS=$BUILD/bin/cfs
BENCHBIN=$BUILD/bin/cfs-ckpt-bench
ENGINE=$BUILD/lib/libcfs_fio.so
for f in "$CFS" "$BENCHBIN"; do [ -x "$f" ] || { echo "missing $f: build with cmake -DCMAKE_BUILD_TYPE=Release -DCFS_FIO_ENGINE=ON -B $BUILD" >&2; exit 1; }; done
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/log/run.log"; }
has() { [[ ",$STEPS," == *",$1,"* ]]; }

DIR=$WORK/cluster
MNT=$WORK/mnt
cleanup() {
  "$CFS" local down --dir "$DIR" >/dev/null 2>&1
  fusermount3 -u -z "$MNT" 2>/dev/null
  pkill -f "iperf3 -s -p 5399" 2>/dev/null
}
trap cleanup EXIT
cleanup
rm -rf "$WORK"
mkdir -p "$WORK"
log "cfs local up: 6 workers, 4+2, 1 MiB units"
"$CFS" local up --dir "$DIR" --mount "$MNT" --workers 6 --stripe 4+2 --unit 1M >"$OUT/log/up.log" 2>&1 \
  || { log "cfs local up failed: $(tail -3 "$OUT/log/up.log")"; exit 1; }
ADDR=$(cat "$DIR/run/meta.addr")
FUSE_PID=$(pgrep -f "cfs-fuse.*$MNT" | head -1)
python3 - "$OUT/machine.json" <<'PY'
import json, os, sys, platform
json.dump({"cpus": os.cpu_count(), "kernel": platform.release(),
           "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
          open(sys.argv[1], "w"))
PY

cpu_of() {  # user+system seconds of a pid
  awk '{print ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0
}

if has iperf; then
  log "iperf3 loopback"
  iperf3 -s -p 5399 -1 >/dev/null 2>&1 &
  sleep 0.5
  iperf3 -c 127.0.0.1 -p 5399 -t 10 -J >"$OUT/raw/iperf3.json" 2>"$OUT/log/iperf3.err" || log "iperf3 failed"
fi

if has iperf; then
  # The other physical limit: writing into the page cache of a local file, which
  # every S-worker does with every byte it stores (CPU seconds per GiB).
  log "dd into the page cache"
  sync
  /usr/bin/time -f '{"elapsed_s": %e, "sys_s": %S, "user_s": %U}' -o "$OUT/raw/pagecache-dd.json" \
    dd if=/dev/zero of="$WORK/pagecache-test" bs=1M count=2048 2>"$OUT/log/dd.log" || log "dd failed"
  rm -f "$WORK/pagecache-test"
  # And the disk: S-workers write whole units with O_DIRECT, so the disk's
  # direct-write bandwidth, with as many writers as S-workers, bounds them too.
  log "fio O_DIRECT disk write (6 jobs x 512 MiB, 1 MiB)"
  mkdir -p "$WORK/disk-test"
  (cd "$WORK/disk-test" && fio --name=disk --directory="$WORK/disk-test" --rw=write --bs=1M \
     --direct=1 --ioengine=psync --numjobs=6 --size=512M --group_reporting --end_fsync=1 \
     --output-format=json >"$OUT/raw/disk-direct.json" 2>"$OUT/log/disk.err") || log "disk fio failed"
  rm -rf "$WORK/disk-test"
  # Let the host finish writing back what these tests left, or the first case pays for it.
  sync; sleep 10
fi

if has ckpt; then
  for r in $(seq 1 "$REPEAT"); do
    for pat in nn n1; do
      for bs in 1M 16M; do
        for mode in async sync posix; do
          name=ckpt-$pat-$bs-$mode-r$r
          sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
          python3 "$HERE/cpu_snapshot.py" >"$OUT/cpu/$name.before.json"
          f0=$(cpu_of "$FUSE_PID")
          args=(--mode $mode --pattern $pat --writers 8 --bs $bs --size "$SIZE" --json --dir /bench)
          if [ $mode = posix ]; then args+=(--mount "$MNT" --no-commit); else args+=(--cluster "$ADDR"); fi
          [ $bs = 16M ] && args+=(--depth 4 --batch 4)
          if "$BENCHBIN" "${args[@]}" >"$OUT/raw/$name.json" 2>"$OUT/log/$name.err"; then
            f1=$(cpu_of "$FUSE_PID")
            python3 - "$OUT/raw/$name.json" "$f0" "$f1" "$mode" <<'PY'
import json, sys
p, f0, f1, mode = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
d = json.load(open(p))
d["fuse_daemon_cpu_s"] = round(f1 - f0, 3) if mode == "posix" else 0.0
gib = d["bytes"] / 2**30
d["client_cpu_s_per_gib"] = round((d["cpu_s"] + d["fuse_daemon_cpu_s"]) / gib, 3)
json.dump(d, open(p, "w"))
PY
            log "$name: $(python3 -c "import json;d=json.load(open('$OUT/raw/$name.json'));print(d['mib_s'],'MiB/s', d['client_cpu_s_per_gib'],'CPU s/GiB')")"
          else
            log "$name FAILED: $(tail -2 "$OUT/log/$name.err")"
          fi
          python3 "$HERE/cpu_snapshot.py" >"$OUT/cpu/$name.after.json"
          rm -rf "$MNT/bench"
        done
      done
    done
  done
fi

if has fio; then
  if [ ! -f "$ENGINE" ]; then
    log "fio step: $ENGINE missing (build with -DCFS_FIO_ENGINE=ON)"
  else
    mkdir -p "$MNT/fio"
    for r in $(seq 1 "$REPEAT"); do
      for bs in 1m 16m; do
        jobs="cfs-nton-8jobs-$bs psync-nton-8jobs-$bs"
        [ $bs = 1m ] && jobs="$jobs cfs-nton-8jobs-1m-u256k"
        for job in $jobs; do
          name=fio-$job-r$r
          sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
          f0=$(cpu_of "$FUSE_PID")
          # fio's CPU: user+system of fio and all its job processes (getrusage
          # of the children of a wrapper), not fio's group-reported percentages.
          fio_cpu=$(CFS_FIO=$ENGINE BENCH_DIR=$MNT/fio MAX_RUNTIME=300 CKPT_SIZE=$SIZE python3 -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(round(r.ru_utime + r.ru_stime, 3) if rc == 0 else -1)' \
            fio --output-format=json --output="$OUT/raw/$name.json" "$HERE/fio/$job.fio" 2>"$OUT/log/$name.log")
          [ "$fio_cpu" = "-1" ] && log "$name FAILED: $(tail -2 "$OUT/log/$name.log")"
          f1=$(cpu_of "$FUSE_PID")
          echo "{\"fuse_daemon_cpu_s\": $(python3 -c "print(round($f1-$f0,3))"), \"fio_cpu_s\": $fio_cpu}" >"$OUT/raw/$name.fuse.json"
          log "$name done"
          rm -rf "$MNT/fio"/*
        done
      done
    done
  fi
fi

python3 "$HERE/ckpt_report.py" "$OUT" | tee "$OUT/results.md"
