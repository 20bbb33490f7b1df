#!/usr/bin/env bash
# Runs the fio jobs in bench/fio/ against several targets in one run and writes
# a results table (markdown) and JSON with CFS beside its peers:
#   local    a plain directory on the local disk
#   bindfs   bindfs (FUSE passthrough) over that directory: the cost of FUSE alone
#   gluster  a 4-brick distributed GlusterFS volume on this machine (bench/gluster.sh)
#   cfs      the mount of a 6-worker local CFS cluster (cfs local up)
#
#   bench/run.sh [--targets local,bindfs,gluster,cfs] [--build DIR] [--work DIR]
#                [--out DIR] [--quick] [--runtime S] [--jobs LIST] [--wait-idle S]
#                [--nice N] [--order job|target]
#
# --nice N runs everything (fio and every daemon of every target, which inherit
# it) at niceness N, e.g. -15, so that other work on a shared machine takes less
# of the CPU from the measurement; all targets get the same treatment.
# --wait-idle S waits up to S seconds for the 1-minute load average to fall
# below 1 before each target (other work on this 2-core machine skews figures).
#
# --order job (default) sets all targets up, then runs each job on every target
# back to back, so changing background load hits all targets alike; --order
# target measures one target at a time with only its daemons running.
#
# Needs root (drop_caches, mounts). A target that cannot be set up is reported
# as failed and the run goes on; the exit status is then 1. Everything is torn
# down on exit, also on error or Ctrl-C.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGETS=local,bindfs,gluster,cfs
BUILD=$REPO/build-bench
WORK=/var/tmp/cfs-bench
OUT=""
QUICK=0
WAIT_IDLE=0
NICE=0
ORDER=job
JOBS="seq-write-1job seq-read-1job seq-write-4jobs seq-read-4jobs rand-write-4k rand-read-4k md-create md-stat md-delete"
export RUNTIME=15 SEQ_SIZE_1=2g SEQ_SIZE_4=512m RAND_SIZE=1g MD_FILES=2000 MAX_RUNTIME=120
CFS_WORKERS=6
# big_writes: bindfs links libfuse2, which without it sends 4 KiB WRITEs (22 MiB/s
# here instead of ~700); bindfs's default single-threaded loop reads faster here.
BINDFS_OPTS=${BINDFS_OPTS:--o big_writes}
# Extra -o options for cfs-fuse (none by default).
CFS_FUSE_OPTIONS=${CFS_FUSE_OPTIONS:-}

usage() { sed -n '2,25p' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) TARGETS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --wait-idle) WAIT_IDLE=$2; shift 2 ;;
    --nice) NICE=$2; shift 2 ;;
    --order) ORDER=$2; shift 2 ;;
    --runtime) RUNTIME=$2; shift 2 ;;
    --jobs) JOBS=${2//,/ }; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ $QUICK = 1 ]; then  # harness check, figures meaningless
  RUNTIME=3 SEQ_SIZE_1=256m SEQ_SIZE_4=64m RAND_SIZE=64m MD_FILES=300
fi
[ -n "$OUT" ] || OUT=$REPO/bench/results/$(date +%Y%m%d-%H%M%S)

log() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (drop_caches and mounts need it)"
command -v fio >/dev/null || die "fio not found; run scripts/install-deps.sh --bench"
command -v python3 >/dev/null || die "python3 not found"

if [ "$NICE" != 0 ]; then
  renice -n "$NICE" -p $$ >/dev/null || die "renice to $NICE failed"
fi

LOCAL_DIR=$WORK/local
BINDFS_SRC=$WORK/bindfs-src
BINDFS_MNT=$WORK/mnt-bindfs
GLUSTER_DIR=$WORK/gluster
GLUSTER_MNT=$WORK/mnt-gluster
CFS_DIR=$WORK/cfs
CFS_MNT=$WORK/mnt-cfs
CFS_BIN=$BUILD/bin/cfs

mkdir -p "$OUT/raw" "$OUT/cpu" "$OUT/log" || die "cannot create $OUT"
log "results in $OUT"

# ---- target set-up and tear-down -------------------------------------------
# Each setup_X prints the directory the jobs run in, or fails.

unmount() {  # unmount $1 if mounted, lazily if busy
  mountpoint -q "$1" 2>/dev/null || return 0
  umount "$1" 2>/dev/null || fusermount3 -u "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
}

setup_local() { rm -rf "$LOCAL_DIR" && mkdir -p "$LOCAL_DIR" && echo "$LOCAL_DIR"; }
down_local() { rm -rf "$LOCAL_DIR"; }

setup_bindfs() {
  command -v bindfs >/dev/null || { log "bindfs not found"; return 1; }
  rm -rf "$BINDFS_SRC" && mkdir -p "$BINDFS_SRC" "$BINDFS_MNT" || return 1
  # shellcheck disable=SC2086
  timeout 30 bindfs $BINDFS_OPTS "$BINDFS_SRC" "$BINDFS_MNT" >"$OUT/log/bindfs.log" 2>&1 || { log "bindfs mount failed: $(cat "$OUT/log/bindfs.log")"; return 1; }
  mountpoint -q "$BINDFS_MNT" || { log "bindfs did not mount $BINDFS_MNT"; return 1; }
  echo "$BINDFS_MNT"
}
down_bindfs() { unmount "$BINDFS_MNT"; rm -rf "$BINDFS_SRC"; rmdir "$BINDFS_MNT" 2>/dev/null || true; }

setup_gluster() {
  timeout 180 "$HERE/gluster.sh" up --dir "$GLUSTER_DIR" --mount "$GLUSTER_MNT" >"$OUT/log/gluster-up.log" 2>&1 \
    || { log "gluster.sh up failed: $(tail -3 "$OUT/log/gluster-up.log")"; return 1; }
  echo "$GLUSTER_MNT"
}
down_gluster() {
  timeout 120 "$HERE/gluster.sh" down --dir "$GLUSTER_DIR" --mount "$GLUSTER_MNT" >>"$OUT/log/gluster-down.log" 2>&1 || true
}

setup_cfs() {
  [ -x "$CFS_BIN" ] || { log "$CFS_BIN not found: build CFS first (cmake -S $REPO -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C $BUILD)"; return 1; }
  down_cfs
  mkdir -p "$CFS_MNT"
  # 6+0: the plain-striping comparison of issue 2 (the launcher's default is 4+2 now).
  timeout 120 "$CFS_BIN" local up --dir "$CFS_DIR" --mount "$CFS_MNT" --workers "$CFS_WORKERS" \
      --stripe "${CFS_STRIPE:-$CFS_WORKERS+0}" ${CFS_FUSE_OPTIONS:+--fuse-options "$CFS_FUSE_OPTIONS"} >"$OUT/log/cfs-up.log" 2>&1 \
    || { log "cfs local up failed (see $OUT/log/cfs-up.log): $(tail -3 "$OUT/log/cfs-up.log")"; return 1; }
  mountpoint -q "$CFS_MNT" || { log "cfs local up returned 0 but $CFS_MNT is not a mount point"; return 1; }
  touch "$CFS_MNT/.probe" && rm -f "$CFS_MNT/.probe" || { log "CFS mount does not accept a create"; return 1; }
  echo "$CFS_MNT"
}
down_cfs() {
  if [ -x "$CFS_BIN" ] && [ -d "$CFS_DIR" ]; then
    timeout 60 "$CFS_BIN" local down --dir "$CFS_DIR" >>"$OUT/log/cfs-down.log" 2>&1 || true
  fi
  unmount "$CFS_MNT"
  # Whatever `cfs local down` left: the daemons named in its pid files.
  for f in "$CFS_DIR"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f"); kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  done
  # Keep the daemons' logs, drop the data.
  [ -d "$CFS_DIR/log" ] && cp -r "$CFS_DIR/log" "$OUT/log/cfs-daemons" 2>/dev/null
  rm -rf "$CFS_DIR"
  rmdir "$CFS_MNT" 2>/dev/null || true
}

UP=()  # targets set up and not yet torn down
cleanup() {
  local t
  for t in "${UP[@]}"; do [ -n "$t" ] && { log "tearing down $t"; "down_$t"; }; done
  UP=()
}
trap 'cleanup' EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---- jobs --------------------------------------------------------------------

target_pids() {  # the pids of target $1's daemons
  case "$1" in
    bindfs) pgrep -f "bindfs .*$BINDFS_MNT" ;;
    gluster)
      [ -f /run/cfs-bench-glusterd.pid ] && cat /run/cfs-bench-glusterd.pid
      pgrep -f "glusterfsd .*--volfile-id cfsbench\."
      pgrep -f "glusterfs .*--volfile-id=/cfsbench" ;;
    cfs) cat "$CFS_DIR"/run/*.pid 2>/dev/null ;;
  esac
}

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

run_job() {  # run_job TARGET DIR JOB
  local t=$1 dir=$2 job=$3
  case "$job" in
    *read*) drop_caches ;;
    *) sync ;;
  esac
  local pids
  pids=$(target_pids "$t" | tr '\n' ' ')
  # shellcheck disable=SC2086
  python3 "$HERE/cpu_snapshot.py" $pids > "$OUT/cpu/$t.$job.before.json"
  local t0 t1
  t0=$(date +%s.%N)
  BENCH_DIR=$dir timeout $((MAX_RUNTIME * 3 + 120)) fio --output-format=json \
    --output="$OUT/raw/$t.$job.json" "$HERE/fio/$job.fio" 2>"$OUT/log/$t.$job.err"
  local rc=$?
  t1=$(date +%s.%N)
  # shellcheck disable=SC2086
  python3 "$HERE/cpu_snapshot.py" $pids > "$OUT/cpu/$t.$job.after.json"
  echo "$t0 $t1" > "$OUT/cpu/$t.$job.wall"
  if [ $rc -ne 0 ]; then
    log "  $job on $t FAILED (rc=$rc): $(tail -2 "$OUT/log/$t.$job.err")"
    rm -f "$OUT/raw/$t.$job.json"
    return 1
  fi
  log "  $job: $(python3 "$HERE/report.py" --one "$OUT/raw/$t.$job.json")"
}

status=0
{
  echo "{"
  echo "  \"date\": \"$(date -Is)\","
  echo "  \"kernel\": \"$(uname -r)\","
  echo "  \"cpus\": $(nproc),"
  echo "  \"cpu_model\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\","
  echo "  \"mem_gib\": $(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo),"
  echo "  \"fio\": \"$(fio --version)\","
  echo "  \"bindfs_opts\": \"$BINDFS_OPTS\","
  echo "  \"cfs_fuse_options\": \"$CFS_FUSE_OPTIONS\","
  echo "  \"cfs_commit\": \"$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)\","
  echo "  \"quick\": $QUICK,"
  echo "  \"nice\": $NICE,"
  echo "  \"order\": \"$ORDER\","
  echo "  \"params\": {\"runtime\": $RUNTIME, \"seq_size_1\": \"$SEQ_SIZE_1\", \"seq_size_4\": \"$SEQ_SIZE_4\", \"rand_size\": \"$RAND_SIZE\", \"md_files_per_job\": $MD_FILES}"
  echo "}"
} > "$OUT/machine.json"

wait_idle() {
  local end=$((SECONDS + WAIT_IDLE))
  while [ $SECONDS -lt $end ] && awk '{exit !($1 >= 1.0)}' /proc/loadavg; do sleep 5; done
}

setup_target() {  # setup_target T: sets DIRS[T] or records the failure
  local t=$1 dir
  log "setting up $t"
  UP+=("$t")
  if ! dir=$("setup_$t"); then
    log "ERROR: target $t could not be set up; skipping it"
    echo "setup failed" > "$OUT/log/$t.failed"
    "down_$t"
    local keep=() u
    for u in "${UP[@]}"; do [ "$u" = "$t" ] || keep+=("$u"); done
    UP=("${keep[@]}")
    status=1
    return 1
  fi
  DIRS[$t]=$dir
  log "$t ready at $dir"
}

declare -A DIRS
for t in ${TARGETS//,/ }; do
  declare -F "setup_$t" >/dev/null || die "unknown target $t"
done
if [ "$ORDER" = job ]; then
  # All targets up at once; each job runs on every target back to back, so a
  # change in background load hits all targets alike.
  for t in ${TARGETS//,/ }; do setup_target "$t"; done
  for job in $JOBS; do
    wait_idle
    echo "$job start $(cat /proc/loadavg)" >> "$OUT/log/loadavg"
    for t in ${TARGETS//,/ }; do
      [ -n "${DIRS[$t]:-}" ] && { run_job "$t" "${DIRS[$t]}" "$job" || status=1; }
    done
  done
  cleanup
else
  # One target at a time: its daemons are the only ones running.
  for t in ${TARGETS//,/ }; do
    wait_idle
    echo "$t start $(cat /proc/loadavg)" >> "$OUT/log/loadavg"
    setup_target "$t" || continue
    for job in $JOBS; do run_job "$t" "${DIRS[$t]}" "$job" || status=1; done
    echo "$t end $(cat /proc/loadavg)" >> "$OUT/log/loadavg"
    cleanup
  done
fi

python3 "$HERE/report.py" --out "$OUT" || status=1
log "table: $OUT/results.md  json: $OUT/results.json"
exit $status
