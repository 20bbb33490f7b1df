#!/usr/bin/env bash
# TCP against RDMA on one cluster, inside the Soft-RoCE guest (issue 5,
# point 7). Run on the host: it boots the guest through
# scripts/rdma-guest/run.sh and runs itself there.
#
#   perftest  ib_write_bw and ib_read_bw on rxe0 (the limit of this RDMA device)
#   ckpt      one 6-worker cluster per transport (4+2, 1 MiB units, daemons on
#             the guest's rxe address, mounted): cfs-ckpt-bench N-to-N, 4
#             writers, 1 MiB requests, libcfs async and sync (client option
#             transport=tcp or rdma) and pwrite on the mount (which uses the
#             cluster's transport); rxe packet counters before and after
#   read      the posix files read back through the mount by 4 readers in
#             parallel, caches dropped first: MiB/s, cfs-fuse CPU and the
#             S-workers' CPU per GiB (the S-workers read from disk straight
#             into registered memory, docs/rdma.md)
#
#   bench/rdma.sh [--build DIR] [--out DIR] [--size PER-WRITER] [--repeat N]
#
# Soft-RoCE is RDMA emulated in the kernel, here inside an emulated (TCG)
# machine: absolute figures say nothing about real fabrics, the ratios between
# transports measured in the same guest are what this records (docs/benchmarks.md).
# Results: OUT (default bench/results/rdma-<date>/) with raw/*.json and results.md.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=$REPO/build-bench
OUT=""
SIZE=64M
REPEAT=2
args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$REPO/bench/results/rdma-$(date +%Y%m%d-%H%M%S)}
if [ -z "${CFS_RDMA_GUEST:-}" ]; then
  mkdir -p "$OUT"
  exec "$REPO/scripts/rdma-guest/run.sh" --timeout 2400 -- "$0" "${args[@]}" --out "$(cd "$OUT" && pwd)"
fi

CFS=$BUILD/bin/cfs
BENCHBIN=$BUILD/bin/cfs-ckpt-bench
for f in "$CFS" "$BENCHBIN"; do [ -x "$f" ] || { echo "missing $f (build $BUILD first)" >&2; exit 1; }; done
ADDR=${CFS_RDMA_ADDR:?}
DEV=${CFS_RDMA_DEVICE:-rxe0}
GID=${CFS_RDMA_GID_INDEX:-1}
mkdir -p "$OUT/raw" "$OUT/log"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/log/run.log"; }
counters() {  # rxe packet counters as JSON
  python3 - "$DEV" <<'PY'
import json, os, sys
d = f"/sys/class/infiniband/{sys.argv[1]}/ports/1/hw_counters"
print(json.dumps({n: int(open(os.path.join(d, n)).read()) for n in ("sent_pkts", "rcvd_pkts")
                  if os.path.exists(os.path.join(d, n))}))
PY
}

cpu_s() {  # user+system seconds of the given processes
  local t=0 p
  for p in "$@"; do t=$(awk -v t="$t" '{print t + ($14 + $15) / 100}' "/proc/$p/stat" 2>/dev/null || echo "$t"); done
  echo "$t"
}

perftest() {  # ib_write_bw|ib_read_bw: average MB/s of 1 MiB messages
  local tool=$1 port=$2
  timeout 120 "$tool" -d "$DEV" -x "$GID" -s 1048576 -n 200 -p "$port" -F >"$OUT/log/$tool-server.log" 2>&1 &
  local spid=$!
  sleep 2
  timeout 120 "$tool" -d "$DEV" -x "$GID" -s 1048576 -n 200 -p "$port" -F "$ADDR" >"$OUT/log/$tool.log" 2>&1
  wait $spid
  awk '$1 == 1048576 {print $4}' "$OUT/log/$tool.log" | tail -1
}
log "perftest on $DEV"
wbw=$(perftest ib_write_bw 18600)
rbw=$(perftest ib_read_bw 18601)
echo "{\"ib_write_bw_MBps\": ${wbw:-null}, \"ib_read_bw_MBps\": ${rbw:-null}}" >"$OUT/raw/perftest.json"
log "ib_write_bw ${wbw:-failed} MB/s, ib_read_bw ${rbw:-failed} MB/s"

for r in $(seq 1 "$REPEAT"); do
  for t in tcp rdma; do
    DIR=/tmp/cfs-bench-rdma-$t
    "$CFS" local down --dir "$DIR" >/dev/null 2>&1
    rm -rf "$DIR"
    if ! "$CFS" local up --dir "$DIR" --mount "$DIR/mnt" --workers 6 --stripe 4+2 --unit 1M --transport "$t" --bind "$ADDR" \
        >"$OUT/log/up-$t-r$r.log" 2>&1; then
      log "cfs local up --transport $t failed: $(tail -3 "$OUT/log/up-$t-r$r.log")"
      continue
    fi
    CL=$(cat "$DIR/run/meta.addr")
    FUSE_PID=$(pgrep -f "cfs-fuse.*$DIR/mnt" | head -1)
    for mode in async sync posix; do
      name=ckpt-$t-$mode-r$r
      c0=$(counters)
      f0=$(awk '{print ($14 + $15) / 100}' "/proc/$FUSE_PID/stat" 2>/dev/null || echo 0)
      if [ $mode = posix ]; then where=(--mount "$DIR/mnt" --no-commit); else where=(--cluster "$CL" --options "transport=$t"); fi
      if "$BENCHBIN" --mode $mode --pattern nn --writers 4 --bs 1M --size "$SIZE" --json --dir /bench \
          "${where[@]}" >"$OUT/raw/$name.json" 2>"$OUT/log/$name.err"; then
        f1=$(awk '{print ($14 + $15) / 100}' "/proc/$FUSE_PID/stat" 2>/dev/null || echo 0)
        c1=$(counters)
        python3 - "$OUT/raw/$name.json" "$c0" "$c1" "$f0" "$f1" "$mode" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
c0, c1 = json.loads(sys.argv[2]), json.loads(sys.argv[3])
d["rxe_sent_pkts"] = c1.get("sent_pkts", 0) - c0.get("sent_pkts", 0)
# The mount's client work happens in cfs-fuse: count its CPU for posix runs.
fuse = float(sys.argv[5]) - float(sys.argv[4]) if sys.argv[6] == "posix" else 0.0
d["client_cpu_s_per_gib"] = round((d["cpu_s"] + fuse) / (d["bytes"] / 2**30), 3)
json.dump(d, open(p, "w"))
PY
        log "$name: $(python3 -c "import json;d=json.load(open('$OUT/raw/$name.json'));print(d['mib_s'],'MiB/s',d['client_cpu_s_per_gib'],'client CPU s/GiB', d['rxe_sent_pkts'],'rxe packets')")"
      else
        log "$name FAILED: $(tail -2 "$OUT/log/$name.err")"
      fi
    done
    # Read back what the posix run wrote, from disk: 4 readers on the mount.
    name=read-$t-r$r
    # (No process substitution: the guest has no /dev/fd. Names have no blanks.)
    files=($(find "$DIR/mnt/bench" -path '*posix-nn*' -name 'rank-*' -type f 2>/dev/null))
    if [ ${#files[@]} -gt 0 ]; then
      spids=($(pgrep -f "cfs-storage.*$DIR"))
      sync; echo 3 >/proc/sys/vm/drop_caches
      f0=$(cpu_s "$FUSE_PID"); s0=$(cpu_s "${spids[@]}"); c0=$(counters); t0=$(date +%s.%N)
      rpids=()
      for f in "${files[@]}"; do cat "$f" >/dev/null & rpids+=($!); done
      rfail=0
      for p in "${rpids[@]}"; do wait "$p" || rfail=1; done
      t1=$(date +%s.%N); c1=$(counters); f1=$(cpu_s "$FUSE_PID"); s1=$(cpu_s "${spids[@]}")
      bytes=$(du -cb "${files[@]}" | tail -1 | cut -f1)
      if [ $rfail = 0 ]; then
        python3 - "$OUT/raw/$name.json" "$bytes" "$t0" "$t1" "$f0" "$f1" "$s0" "$s1" "$c0" "$c1" <<'PY'
import json, sys
p, b, t0, t1, f0, f1, s0, s1 = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:9])
c0, c1 = json.loads(sys.argv[9]), json.loads(sys.argv[10])
gib = b / 2**30
json.dump({"bytes": b, "mib_s": round(b / 2**20 / (t1 - t0), 2),
           "client_cpu_s_per_gib": round((f1 - f0) / gib, 3),
           "server_cpu_s_per_gib": round((s1 - s0) / gib, 3),
           "rxe_sent_pkts": c1.get("sent_pkts", 0) - c0.get("sent_pkts", 0)}, open(p, "w"))
PY
        log "$name: $(python3 -c "import json;d=json.load(open('$OUT/raw/$name.json'));print(d['mib_s'],'MiB/s',d['client_cpu_s_per_gib'],'cfs-fuse CPU s/GiB',d['server_cpu_s_per_gib'],'S-worker CPU s/GiB')")"
      else
        log "$name FAILED: a reader failed"
      fi
    fi
    "$CFS" local down --dir "$DIR" >/dev/null 2>&1
    rm -rf "$DIR"
  done
done

python3 - "$OUT" <<'PY' | tee "$OUT/results.md"
import glob, json, os, statistics, sys
out = sys.argv[1]
pt = json.load(open(os.path.join(out, "raw/perftest.json")))
def med(t, m, key):
    v = [json.load(open(p))[key] for p in glob.glob(os.path.join(out, f"raw/ckpt-{t}-{m}-r*.json"))]
    return statistics.median(v) if v else None
print("# TCP against RDMA in the Soft-RoCE guest\n")
print(f"perftest on rxe0, 1 MiB messages: ib_write_bw {pt['ib_write_bw_MBps']} MB/s, "
      f"ib_read_bw {pt['ib_read_bw_MBps']} MB/s.\n")
print("| client | TCP MiB/s | RDMA MiB/s | RDMA / TCP | client CPU s/GiB TCP | RDMA | rxe packets TCP | RDMA |")
print("|---|---|---|---|---|---|---|---|")
for m in ("async", "sync", "posix"):
    tb, rb = med("tcp", m, "mib_s"), med("rdma", m, "mib_s")
    tc, rc = med("tcp", m, "client_cpu_s_per_gib"), med("rdma", m, "client_cpu_s_per_gib")
    tp, rp = med("tcp", m, "rxe_sent_pkts"), med("rdma", m, "rxe_sent_pkts")
    f = lambda x, n=1: "-" if x is None else f"{x:.{n}f}"
    ratio = f"{rb / tb:.2f}x" if tb and rb else "-"
    label = {"async": "libcfs async", "sync": "libcfs sync", "posix": "FUSE (writers + cfs-fuse)"}[m]
    print(f"| {label} | {f(tb)} | {f(rb)} | {ratio} | {f(tc, 2)} | {f(rc, 2)} | {f(tp, 0)} | {f(rp, 0)} |")
def rmed(t, key):
    v = [json.load(open(p))[key] for p in glob.glob(os.path.join(out, f"raw/read-{t}-r*.json"))]
    return statistics.median(v) if v else None
print("\nRead back through the mount (4 readers, caches dropped):\n")
print("| transport | MiB/s | cfs-fuse CPU s/GiB | S-worker CPU s/GiB |")
print("|---|---|---|---|")
for t in ("tcp", "rdma"):
    f = lambda x: "-" if x is None else f"{x:.2f}"
    print(f"| {t} | {f(rmed(t, 'mib_s'))} | {f(rmed(t, 'client_cpu_s_per_gib'))} | {f(rmed(t, 'server_cpu_s_per_gib'))} |")
PY
