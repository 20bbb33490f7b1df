#!/usr/bin/env bash
# Benchmarks of erasure coding (issue 3, point 10), all in one run on one
# 6-worker `cfs local` cluster and a GlusterFS dispersed volume on this machine:
#
#   seq       seq-write/read-1job and -4jobs (bench/fio/, as in run.sh) in a
#             K+M directory (default 4+2), a plain directory (default 6+0) and
#             a GlusterFS disperse K+M volume (bench/gluster.sh --disperse),
#             each job on the three targets back to back
#   rand      partial-stripe 4 KiB random writes (psync: one request in flight
#             per job), 1 job and 4 jobs, time-based, on a pre-written file, in
#             the K+M and the plain directory
#   degraded  seq-read-1job/-4jobs of the K+M files healthy, then with one, then
#             two S-workers killed (kill -9 of the pids in DIR/run/storage-I.pid);
#             the killed workers are restarted afterwards
#   rebuild   one worker's target directory wiped, the worker restarted
#             (cfs local start-worker) once the M-worker lists it down,
#             `cfs rebuild`, `cfs rebuild status --json` polled until "state"
#             is "idle": MiB/s from bytes_total (cfs-meta's --rebuild-rate
#             throttle, default 200M, applies)
#
#   bench/ec.sh [--build DIR] [--work DIR] [--out DIR] [--quick] [--nice N]
#               [--targets cfs,gluster] [--steps seq,rand,degraded,rebuild]
#               [--ec K+M] [--plain K+0] [--unit SIZE] [--kill I,J] [--wipe I]
#               [--detect-wait S] [--rand-runtime S] [--rebuild-timeout S]
#
# Results: OUT (default bench/results/ec-<date>/) with raw/ (fio JSON), cpu/,
# log/, rebuild.json, machine.json, and report.py's results.md/results.json
# (the ratios of issue 3's targets). Needs root (drop_caches, mounts). A step
# or target that fails is reported and the run goes on; the exit status is then
# 1. Everything is torn down on exit, also on error or Ctrl-C.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=$REPO/build-bench
WORK=/var/tmp/cfs-bench-ec
OUT=""
QUICK=0
NICE=0
TARGETS=cfs,gluster
STEPS=seq,rand,degraded,rebuild
EC=4+2
PLAIN=6+0
UNIT=1M           # stripe unit of both directories (cfs setstripe --unit)
KILL=0,1          # S-workers killed for the degraded reads, in this order
WIPE=5            # S-worker whose target is wiped for the rebuild
DETECT_WAIT=6     # seconds after a kill before the degraded read (detection <= 5 s)
REBUILD_TIMEOUT=3600
WORKERS=6
export RUNTIME=30 SEQ_SIZE_1=2g SEQ_SIZE_4=512m RAND_SIZE=1g MAX_RUNTIME=120
SEQ_JOBS="seq-write-1job seq-read-1job seq-write-4jobs seq-read-4jobs"
RAND_JOBS="rand-write-4k-1job rand-write-4k"
READ_JOBS="seq-read-1job seq-read-4jobs"

usage() { sed -n '2,30p' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --nice) NICE=$2; shift 2 ;;
    --targets) TARGETS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --ec) EC=$2; shift 2 ;;
    --plain) PLAIN=$2; shift 2 ;;
    --unit) UNIT=$2; shift 2 ;;
    --kill) KILL=$2; shift 2 ;;
    --wipe) WIPE=$2; shift 2 ;;
    --detect-wait) DETECT_WAIT=$2; shift 2 ;;
    --rand-runtime) RUNTIME=$2; shift 2 ;;
    --rebuild-timeout) REBUILD_TIMEOUT=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "ec.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ $QUICK = 1 ]; then  # harness check, figures meaningless
  RUNTIME=3 SEQ_SIZE_1=256m SEQ_SIZE_4=64m RAND_SIZE=64m MAX_RUNTIME=30
fi
[ -n "$OUT" ] || OUT=$REPO/bench/results/ec-$(date +%Y%m%d-%H%M%S)

log() { echo "[ec.sh $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
has() { [[ ",$1," == *",$2,"* ]]; }
[ "$(id -u)" -eq 0 ] || die "must run as root (drop_caches and mounts need it)"
command -v fio >/dev/null || die "fio not found; run scripts/install-deps.sh --bench"
command -v python3 >/dev/null || die "python3 not found"
[[ "$EC" =~ ^([0-9]+)\+([0-9]+)$ ]] || die "--ec wants K+M (got $EC)"
EC_K=${BASH_REMATCH[1]} EC_M=${BASH_REMATCH[2]}
[[ "$PLAIN" =~ ^([0-9]+)\+([0-9]+)$ ]] || die "--plain wants K+M (got $PLAIN)"
PLAIN_K=${BASH_REMATCH[1]} PLAIN_M=${BASH_REMATCH[2]}
IFS=, read -r -a KILLS <<<"$KILL"
for i in "${KILLS[@]}" "$WIPE"; do
  [[ "$i" =~ ^[0-9]+$ ]] && [ "$i" -lt $WORKERS ] || die "worker index $i not in 0..$((WORKERS - 1))"
done
[ "$NICE" = 0 ] || renice -n "$NICE" -p $$ >/dev/null || die "renice to $NICE failed"

CFS_BIN=$BUILD/bin/cfs
CFS_DIR=$WORK/cfs
CFS_MNT=$WORK/mnt-cfs
GLUSTER_VOL=cfsbenchec
GLUSTER_DIR=$WORK/gluster
GLUSTER_MNT=$WORK/mnt-gluster

mkdir -p "$OUT/raw" "$OUT/cpu" "$OUT/log" || die "cannot create $OUT"
log "results in $OUT"
status=0

unmount() {  # unmount $1 if mounted, lazily if busy
  mountpoint -q "$1" 2>/dev/null || return 0
  umount "$1" 2>/dev/null || fusermount3 -u "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
}
cfs() { CFS_CLUSTER=$(cat "$CFS_DIR/run/meta.addr" 2>/dev/null) timeout 120 "$CFS_BIN" "$@"; }
json_field() {  # json_field FIELD < JSON: prints the field ("" if absent)
  python3 -c 'import json,sys
try: v = json.load(sys.stdin).get(sys.argv[1], "")
except Exception: v = ""
print(v)' "$1"
}

# ---- targets -----------------------------------------------------------------
# Target names (prefix of the raw files): cfs-ec, cfs-plain, gluster-ec; the
# degraded reads are cfs-ec-down0 (healthy, just before), -down1, -down2.
declare -A DIRS

setup_cfs() {
  [ -x "$CFS_BIN" ] || { log "$CFS_BIN not found: build CFS first (cmake -S $REPO -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C $BUILD)"; return 1; }
  down_cfs
  mkdir -p "$CFS_MNT"
  log "cfs local up: $WORKERS workers, default layout $PLAIN, unit $UNIT"
  timeout 180 "$CFS_BIN" local up --dir "$CFS_DIR" --mount "$CFS_MNT" --workers $WORKERS --stripe "$PLAIN" --unit "$UNIT" \
      >"$OUT/log/cfs-up.log" 2>&1 \
    || { log "cfs local up failed (see $OUT/log/cfs-up.log): $(tail -3 "$OUT/log/cfs-up.log")"; return 1; }
  mountpoint -q "$CFS_MNT" || { log "$CFS_MNT is not a mount point after cfs local up"; return 1; }
  CFS_UP=1
  mkdir -p "$CFS_MNT/plain" "$CFS_MNT/ec" || { log "mkdir on the CFS mount failed"; return 1; }
  if cfs setstripe --unit "$UNIT" --count "$PLAIN_K" --parity "$PLAIN_M" "$CFS_MNT/plain" >"$OUT/log/setstripe-plain.log" 2>&1; then
    DIRS[cfs-plain]=$CFS_MNT/plain
  else
    log "ERROR: setstripe $PLAIN failed: $(tail -2 "$OUT/log/setstripe-plain.log")"; echo "setstripe failed" > "$OUT/log/cfs-plain.failed"; status=1
  fi
  if cfs setstripe --unit "$UNIT" --count "$EC_K" --parity "$EC_M" "$CFS_MNT/ec" >"$OUT/log/setstripe-ec.log" 2>&1; then
    DIRS[cfs-ec]=$CFS_MNT/ec
  else
    log "ERROR: setstripe $EC failed: $(tail -2 "$OUT/log/setstripe-ec.log")"; echo "setstripe failed" > "$OUT/log/cfs-ec.failed"; status=1
  fi
  cfs getstripe "$CFS_MNT/plain" >>"$OUT/log/setstripe-plain.log" 2>&1
  cfs getstripe "$CFS_MNT/ec" >>"$OUT/log/setstripe-ec.log" 2>&1
  return 0
}
down_cfs() {
  if [ -x "$CFS_BIN" ] && [ -d "$CFS_DIR" ]; then
    timeout 60 "$CFS_BIN" local down --dir "$CFS_DIR" >>"$OUT/log/cfs-down.log" 2>&1 || true
  fi
  unmount "$CFS_MNT"
  for f in "$CFS_DIR"/run/*.pid; do  # whatever `cfs local down` left
    [ -f "$f" ] || continue
    pid=$(cat "$f"); kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  done
  [ -d "$CFS_DIR/log" ] && cp -r "$CFS_DIR/log" "$OUT/log/cfs-daemons" 2>/dev/null
  rm -rf "$CFS_DIR"
  rmdir "$CFS_MNT" 2>/dev/null || true
  CFS_UP=0
}

setup_gluster() {
  log "GlusterFS disperse $EC volume"
  timeout 180 "$HERE/gluster.sh" up --disperse "$EC" --volume $GLUSTER_VOL --dir "$GLUSTER_DIR" --mount "$GLUSTER_MNT" \
      >"$OUT/log/gluster-up.log" 2>&1 \
    || { log "gluster.sh up failed: $(tail -3 "$OUT/log/gluster-up.log")"; echo "setup failed" > "$OUT/log/gluster-ec.failed"; return 1; }
  GLUSTER_UP=1
  DIRS[gluster-ec]=$GLUSTER_MNT
}
down_gluster() {
  timeout 120 "$HERE/gluster.sh" down --volume $GLUSTER_VOL --dir "$GLUSTER_DIR" --mount "$GLUSTER_MNT" \
    >>"$OUT/log/gluster-down.log" 2>&1 || true
  GLUSTER_UP=0
}

CFS_UP=0 GLUSTER_UP=0
cleanup() {
  [ $CFS_UP = 1 ] && { log "tearing down cfs"; down_cfs; }
  [ $GLUSTER_UP = 1 ] && { log "tearing down gluster"; down_gluster; }
}
trap 'cleanup' EXIT
trap 'log "interrupted"; exit 130' INT TERM

target_pids() {  # the pids of target $1's daemons
  case "$1" in
    gluster-*)
      [ -f /run/cfs-bench-glusterd.pid ] && cat /run/cfs-bench-glusterd.pid
      pgrep -f "glusterfsd .*--volfile-id $GLUSTER_VOL\."
      pgrep -f "glusterfs .*--volfile-id=/$GLUSTER_VOL" ;;
    cfs-*) cat "$CFS_DIR"/run/*.pid 2>/dev/null ;;
  esac
}

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

run_job() {  # run_job NAME DIR JOB: fio JOB in DIR, results as NAME.JOB
  local t=$1 dir=$2 job=$3
  case "$job" in
    *read*) drop_caches ;;
    *) sync ;;
  esac
  echo "$t $job start $(cat /proc/loadavg)" >> "$OUT/log/loadavg"
  local pids
  pids=$(target_pids "$t" | tr '\n' ' ')
  # shellcheck disable=SC2086
  python3 "$HERE/cpu_snapshot.py" $pids > "$OUT/cpu/$t.$job.before.json"
  local t0 t1 rc
  t0=$(date +%s.%N)
  BENCH_DIR=$dir timeout $((MAX_RUNTIME * 3 + 120)) fio --output-format=json \
    --output="$OUT/raw/$t.$job.json" "$HERE/fio/$job.fio" 2>"$OUT/log/$t.$job.err"
  rc=$?
  t1=$(date +%s.%N)
  # shellcheck disable=SC2086
  python3 "$HERE/cpu_snapshot.py" $pids > "$OUT/cpu/$t.$job.after.json"
  echo "$t0 $t1" > "$OUT/cpu/$t.$job.wall"
  if [ $rc -ne 0 ]; then
    log "  $t $job FAILED (rc=$rc): $(tail -2 "$OUT/log/$t.$job.err")"
    rm -f "$OUT/raw/$t.$job.json"
    status=1
    return 1
  fi
  log "  $t $job: $(python3 "$HERE/report.py" --one "$OUT/raw/$t.$job.json")"
}

worker_pid() { cat "$CFS_DIR/run/storage-$1.pid" 2>/dev/null; }
kill_worker() {  # kill -9 S-worker $1
  local pid
  pid=$(worker_pid "$1")
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    log "ERROR: S-worker $1 has no live pid ($CFS_DIR/run/storage-$1.pid)"; return 1
  fi
  kill -9 "$pid"
  log "  killed S-worker $1 (pid $pid)"
  echo "$(date -Is) kill -9 S-worker $1 pid $pid" >> "$OUT/log/events"
}
start_worker() {
  if timeout 180 "$CFS_BIN" local start-worker --dir "$CFS_DIR" "$1" >>"$OUT/log/start-worker.log" 2>&1; then
    log "  restarted S-worker $1"; echo "$(date -Is) start-worker $1" >> "$OUT/log/events"
  else
    log "ERROR: cfs local start-worker $1 failed: $(tail -2 "$OUT/log/start-worker.log")"; status=1; return 1
  fi
}

# wait_idle_rebuild TIMEOUT LOGFILE: polls `cfs rebuild status --json` every
# 0.25 s until "state" is "idle"; prints the seconds waited. Fails on timeout
# or if the command does not work.
wait_idle_rebuild() {
  local limit=$1 logf=$2 t0 js st
  t0=$(date +%s.%N)
  while :; do
    if ! js=$(cfs rebuild status --json 2>>"$OUT/log/rebuild-status.err"); then
      log "ERROR: cfs rebuild status --json failed: $(tail -1 "$OUT/log/rebuild-status.err")"; return 1
    fi
    echo "{\"t\": $(date +%s.%N), \"status\": $(echo "$js" | tr -d '\n')}" >> "$logf"
    st=$(echo "$js" | json_field state)
    if [ "$st" = idle ]; then
      python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$t0" "$(date +%s.%N)"
      return 0
    fi
    python3 -c "import sys; sys.exit(float(sys.argv[2]) - float(sys.argv[1]) < float(sys.argv[3]))" \
      "$t0" "$(date +%s.%N)" "$limit" && { log "ERROR: rebuild not idle after $limit s (last state '$st')"; return 1; }
    sleep 0.25
  done
}

wait_down_target() {  # wait_down_target TIMEOUT: until down_targets is not empty
  local i js
  for ((i = 0; i < $1; i++)); do
    js=$(cfs rebuild status --json 2>/dev/null)
    [ -n "$js" ] && echo "$js" | python3 -c 'import json,sys
sys.exit(0 if json.load(sys.stdin).get("down_targets") else 1)' 2>/dev/null && return 0
    sleep 1
  done
  return 1
}

{
  echo "{"
  echo "  \"date\": \"$(date -Is)\","
  echo "  \"kernel\": \"$(uname -r)\","
  echo "  \"cpus\": $(nproc),"
  echo "  \"cpu_model\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\","
  echo "  \"mem_gib\": $(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo),"
  echo "  \"fio\": \"$(fio --version)\","
  echo "  \"glusterfs\": \"$(glusterfs --version 2>/dev/null | head -1)\","
  echo "  \"cfs_commit\": \"$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)\","
  echo "  \"cfs_build\": \"$BUILD\","
  echo "  \"quick\": $QUICK,"
  echo "  \"nice\": $NICE,"
  echo "  \"workers\": $WORKERS, \"ec\": \"$EC\", \"plain\": \"$PLAIN\", \"unit\": \"$UNIT\", \"kill\": \"$KILL\", \"wipe\": $WIPE,"
  echo "  \"detect_wait_s\": $DETECT_WAIT, \"targets\": \"$TARGETS\", \"steps\": \"$STEPS\","
  echo "  \"params\": {\"rand_runtime\": $RUNTIME, \"seq_size_1\": \"$SEQ_SIZE_1\", \"seq_size_4\": \"$SEQ_SIZE_4\", \"rand_size\": \"$RAND_SIZE\"}"
  echo "}"
} > "$OUT/machine.json"

# ---- set up --------------------------------------------------------------------
if has "$TARGETS" cfs; then setup_cfs || { echo "setup failed" > "$OUT/log/cfs.failed"; status=1; }; fi
if has "$TARGETS" gluster; then setup_gluster || status=1; fi
SEQ_TARGETS="cfs-plain cfs-ec gluster-ec"

# ---- sequential: K+M vs plain vs GlusterFS disperse, job by job ----------------
if has "$STEPS" seq; then
  log "step seq"
  # Each job runs on the targets back to back, so background load hits all
  # alike; the order rotates from job to job, so no target always goes last
  # (fresh page-cache pages get dearer as a round fills memory).
  read -r -a order <<<"$SEQ_TARGETS"
  for job in $SEQ_JOBS; do
    for t in "${order[@]}"; do
      [ -n "${DIRS[$t]:-}" ] && run_job "$t" "${DIRS[$t]}" "$job"
    done
    order=("${order[@]:1}" "${order[0]}")
  done
  # The layouts the files really got, for the record.
  for t in cfs-plain cfs-ec; do
    [ -f "${DIRS[$t]:-/nonexistent}/seq1.0" ] && cfs getstripe "${DIRS[$t]}/seq1.0" >"$OUT/log/$t.getstripe.log" 2>&1
  done
  # Only the K+M files are read again (degraded); free the others' space.
  [ -n "${DIRS[cfs-plain]:-}" ] && rm -f "${DIRS[cfs-plain]}"/seq*
  [ -n "${DIRS[gluster-ec]:-}" ] && rm -f "${DIRS[gluster-ec]}"/seq*
fi
# GlusterFS is only needed for the sequential jobs.
[ $GLUSTER_UP = 1 ] && down_gluster

# ---- partial-stripe 4 KiB random writes ------------------------------------------
if has "$STEPS" rand; then
  log "step rand (4 KiB random writes, ${RUNTIME} s per job)"
  for t in cfs-ec cfs-plain; do
    [ -n "${DIRS[$t]:-}" ] || continue
    run_job "$t" "${DIRS[$t]}" rand-prewrite || continue
    for job in $RAND_JOBS; do run_job "$t" "${DIRS[$t]}" "$job"; done
  done
  [ -n "${DIRS[cfs-plain]:-}" ] && rm -f "${DIRS[cfs-plain]}"/rand.dat
fi

# ---- degraded reads: the same K+M files, healthy, one and two S-workers down ------
if has "$STEPS" degraded && [ -n "${DIRS[cfs-ec]:-}" ]; then
  log "step degraded (kill -9 of S-workers ${KILL}, ${DETECT_WAIT} s after each kill)"
  d=${DIRS[cfs-ec]}
  if [ ! -f "$d/seq1.0" ]; then  # the seq step was skipped: write the files
    run_job cfs-ec "$d" seq-write-1job; run_job cfs-ec "$d" seq-write-4jobs
  fi
  sample() { head -c 64M "$1" 2>/dev/null | md5sum | cut -d' ' -f1; }
  drop_caches
  ref=$(sample "$d/seq1.0")
  for job in $READ_JOBS; do run_job cfs-ec-down0 "$d" "$job"; done
  n=0
  for w in "${KILLS[@]}"; do
    kill_worker "$w" || { status=1; break; }
    n=$((n + 1))
    sleep "$DETECT_WAIT"
    { echo "== $(date -Is) $n down"; cfs workers; } >> "$OUT/log/workers.log" 2>&1
    for job in $READ_JOBS; do run_job "cfs-ec-down$n" "$d" "$job"; done
    drop_caches
    got=$(sample "$d/seq1.0")
    if [ "$got" = "$ref" ]; then
      log "  first 64 MiB of seq1.0 with $n down: same md5 as healthy"
    else
      log "ERROR: first 64 MiB of seq1.0 with $n down differ from healthy ($got vs $ref)"
      echo "content mismatch with $n S-workers down" >> "$OUT/log/degraded.failed"; status=1
    fi
  done
  for w in "${KILLS[@]}"; do start_worker "$w"; done
  if "$CFS_BIN" rebuild --help >/dev/null 2>&1; then
    if s=$(wait_idle_rebuild 900 "$OUT/log/resync-status.jsonl"); then
      log "  redundancy back (rebuild state idle) ${s} s after the restarts"
    else
      status=1
    fi
  fi
fi

# ---- rebuild: wipe one S-worker's target, restart it, cfs rebuild -----------------
if has "$STEPS" rebuild && [ -n "${DIRS[cfs-ec]:-}" ]; then
  log "step rebuild (wipe S-worker $WIPE)"
  if ! "$CFS_BIN" rebuild --help >/dev/null 2>&1; then
    log "ERROR: this cfs has no 'rebuild' command"; echo "no cfs rebuild" > "$OUT/log/rebuild.failed"; status=1
  else
    d=${DIRS[cfs-ec]}
    [ -f "$d/seq1.0" ] || { run_job cfs-ec "$d" seq-write-1job; run_job cfs-ec "$d" seq-write-4jobs; }
    # Files without redundancy cannot be rebuilt (and would keep the state running).
    [ -n "${DIRS[cfs-plain]:-}" ] && rm -rf "${DIRS[cfs-plain]:?}"/*
    sync
    tgt=$CFS_DIR/storage-$WIPE/t0
    before=$(du -sb "$tgt" 2>/dev/null | cut -f1)
    log "  S-worker $WIPE target holds $before bytes; wiping it"
    kill_worker "$WIPE"
    # `cfs rebuild` retires the targets that are down at that moment: wait until
    # the M-worker has marked the killed one down (missed heartbeats), before
    # the restarted worker registers its empty target under a new id.
    if wait_down_target 60; then
      log "  the M-worker lists a down target"
    else
      log "ERROR: no target listed down within 60 s of the kill"; status=1
    fi
    rm -rf "$tgt"
    echo "$(date -Is) wiped $tgt" >> "$OUT/log/events"
    start_worker "$WIPE"
    t0=$(date +%s.%N)
    if cfs rebuild >"$OUT/log/rebuild.log" 2>&1; then
      if el=$(wait_idle_rebuild "$REBUILD_TIMEOUT" "$OUT/log/rebuild-status.jsonl"); then
        t1=$(date +%s.%N)
        after=$(du -sb "$CFS_DIR"/storage-*/t0 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}')
        python3 - "$OUT" "$t0" "$t1" "${before:-0}" "$after" >&2 <<'EOF' \
          || { log "ERROR: the rebuild reported no bytes"; echo "rebuilt nothing" > "$OUT/log/rebuild.failed"; status=1; }
import json, sys
out, t0, t1, before, after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(float(sys.argv[4] or 0)), int(float(sys.argv[5] or 0))
polls = [json.loads(l) for l in open(f"{out}/log/rebuild-status.jsonl")]
def field(st, name):  # snake_case or protobuf-JSON camelCase; uint64 may be a string
    parts = name.split("_")
    v = st.get(name, st.get(parts[0] + "".join(p.title() for p in parts[1:])))
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0
bt = int(max((field(p["status"], "bytes_total") for p in polls), default=0))
bd = int(max((field(p["status"], "bytes_done") for p in polls), default=0))
rates = [field(p["status"], "rate_bytes_per_s") for p in polls if p["status"].get("state") == "running"]
saw = any(p["status"].get("state") == "running" for p in polls)
el = t1 - t0
mib = lambda b: round(b / 1048576 / el, 1) if el > 0 and b else None
r = {"elapsed_s": round(el, 2), "bytes_total": bt, "bytes_done": bd, "wiped_target_bytes": before,
     "all_targets_bytes_after": after, "saw_running": saw, "polls": len(polls),
     "mib_s": mib(bt), "mib_s_from_bytes_done": mib(bd), "mib_s_from_wiped_bytes": mib(before),
     "reported_rate_mib_s_max": round(max(rates) / 1048576, 1) if rates else None}
json.dump(r, open(f"{out}/rebuild.json", "w"), indent=2)
print(f"rebuild: bytes_total {bt} in {el:.1f} s = {r['mib_s']} MiB/s (bytes_done {bd}; wiped target held {before} bytes)")
sys.exit(0 if bt or bd else 3)
EOF
      else
        echo "not idle" > "$OUT/log/rebuild.failed"; status=1
      fi
    else
      log "ERROR: cfs rebuild failed: $(tail -2 "$OUT/log/rebuild.log")"; echo "cfs rebuild failed" > "$OUT/log/rebuild.failed"; status=1
    fi
  fi
fi

cleanup
python3 "$HERE/report.py" --ec --out "$OUT" || status=1
log "table: $OUT/results.md  json: $OUT/results.json"
exit $status
