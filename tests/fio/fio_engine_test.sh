#!/usr/bin/env bash
# fio with lib/libcfs_fio.so against a real local cluster (issue 4 points 5
# and 8): sequential and random writes with verify=crc32c, read and randread
# verify of what was written at iodepth 1 and 32, block sizes 4k..16m mixed,
# nrfiles=8 openfiles=4, fsync, both cfs_cluster= and cfs_mount=, fio's layout
# of a file a read job needs, layout options, and bad options. Content is
# checked outside the engine too: a file the engine wrote is read through the
# FUSE mount and compared word by word (and by sha256) with what fio wrote, and
# fio's psync engine verifies the engine's crc32c blocks through the mount.
# Usage: tests/fio/fio_engine_test.sh BUILD_DIR     (exit 0 only if all pass)
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ENGINE=$BUILD/lib/libcfs_fio.so
CFS=$BUILD/bin/cfs
CHECK="python3 $HERE/fio_check.py"

die() { echo "FAIL: $*" >&2; exit 1; }
command -v fio >/dev/null || die "fio not found (scripts/install-deps.sh installs it)"
[ -f "$ENGINE" ] || die "$ENGINE missing: configure with -DCFS_FIO_ENGINE=ON and build cfs_fio"
[ -x "$CFS" ] || die "$CFS missing: build cfs-cli"
echo "fio: $(fio --version), engine: $ENGINE"

D=$(mktemp -d /tmp/cfs-fio-XXXXXX)
MNT=$D/mnt
cleanup() {
  "$CFS" local down --dir "$D" >/dev/null 2>&1
  mountpoint -q "$MNT" 2>/dev/null && fusermount3 -u -z "$MNT"
  rm -rf "$D"
}
trap cleanup EXIT
"$CFS" local up --dir "$D" --mount "$MNT" --workers 6 --stripe 4+2 --unit 1M >"$D/up.log" 2>&1 ||
  { cat "$D/up.log"; die "cfs local up failed"; }
ADDR=$(cat "$D/run/meta.addr")
echo "cluster $ADDR (4+2, 1 MiB units), mount $MNT"

failures=0
passed=0
MiB=$((1 << 20))

# run NAME WRITE_BYTES READ_BYTES: runs $D/NAME.fio (written by the caller) and
# checks fio's exit status, its JSON (no job error, byte counts) and that it
# reported no verify failure.
run() {
  local name=$1 want_w=$2 want_r=$3
  echo "== $name"
  fio --output-format=json --output="$D/$name.json" "$D/$name.fio" >"$D/$name.out" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL $name: fio exited $rc"; cat "$D/$name.out"; head -c 2000 "$D/$name.json"
    failures=$((failures + 1)); return 1
  fi
  if grep -qiE "verify: bad|bad magic|crc32c: wanted|verify failed" "$D/$name.out" "$D/$name.json"; then
    echo "FAIL $name: fio reported verify errors"; grep -iE "verify|bad|wanted" "$D/$name.out" | head
    failures=$((failures + 1)); return 1
  fi
  if ! $CHECK json "$D/$name.json" "$want_w" "$want_r"; then
    echo "FAIL $name"; failures=$((failures + 1)); return 1
  fi
  passed=$((passed + 1))
}

# expect_fail NAME PATTERN: fio must fail and print PATTERN.
expect_fail() {
  local name=$1 pattern=$2
  echo "== $name (must fail)"
  if fio "$D/$name.fio" >"$D/$name.out" 2>&1; then
    echo "FAIL $name: fio succeeded"; failures=$((failures + 1)); return 1
  fi
  if ! grep -q "$pattern" "$D/$name.out"; then
    echo "FAIL $name: no \"$pattern\" in fio's output:"; cat "$D/$name.out"
    failures=$((failures + 1)); return 1
  fi
  echo "  fio failed with: $(grep "$pattern" "$D/$name.out" | head -n1)"
  passed=$((passed + 1))
}

job() { cat >"$D/$1.fio"; }

# 1. Sequential write, 1 MiB blocks, depth 32, verified after writing (cfs_cluster).
job seq-write-verify <<EOF
[seq-write-verify]
ioengine=external:$ENGINE
cfs_cluster=$ADDR
filename=/fiotest/seq.dat
rw=write
bs=1m
iodepth=32
size=128m
verify=crc32c
do_verify=1
EOF
run seq-write-verify $((128 * MiB)) $((128 * MiB))

# 2. Read it back at depth 1, verifying every block (cfs_cluster).
job read-verify-qd1 <<EOF
[read-verify-qd1]
ioengine=external:$ENGINE
cfs_cluster=$ADDR
filename=/fiotest/seq.dat
rw=read
bs=1m
iodepth=1
size=128m
verify=crc32c
EOF
run read-verify-qd1 0 $((128 * MiB))

# 3. Random reads at depth 32 of the same file, named through the mount (cfs_mount).
job randread-verify-qd32 <<EOF
[randread-verify-qd32]
ioengine=external:$ENGINE
cfs_mount=$MNT
filename=$MNT/fiotest/seq.dat
rw=randread
bs=1m
iodepth=32
size=128m
verify=crc32c
EOF
run randread-verify-qd32 0 $((128 * MiB))

# 4. Random writes of mixed sizes 4k..16m, 8 files per job with 4 open at a
#    time, 2 jobs, depth 32, verified (cfs_mount; files named under the mount
#    in a directory that does not exist yet: fio's directory= would want it to
#    exist locally, filename_format does not).
job randwrite-mixed-files <<EOF
[global]
ioengine=external:$ENGINE
cfs_mount=$MNT
filename_format=$MNT/fiotest/many/\$jobname.\$jobnum.\$filenum
rw=randwrite
bssplit=4k/30:64k/20:1m/20:4m/20:16m/10
iodepth=32
nrfiles=8
openfiles=4
file_service_type=roundrobin
size=128m
verify=crc32c
do_verify=1
[randwrite-mixed-files]
numjobs=2
EOF
run randwrite-mixed-files $((256 * MiB)) $((256 * MiB))

# 5. Depth 1 random writes with an fsync every 4 writes, then verify (cfs_cluster).
job randwrite-fsync-qd1 <<EOF
[randwrite-fsync-qd1]
ioengine=external:$ENGINE
cfs_cluster=$ADDR
filename=/fiotest/fsync.dat
rw=randwrite
bsrange=4k-64k
iodepth=1
fsync=4
size=16m
verify=crc32c
do_verify=1
EOF
run randwrite-fsync-qd1 -1 -1

# 6. A file written by the engine with each block filled with its own offset,
#    read through the FUSE mount and compared word by word and by sha256
#    (cfs_mount with fio's directory= on the mount).
job offset-pattern <<EOF
[offset-pattern]
ioengine=external:$ENGINE
cfs_mount=$MNT
directory=$MNT/fiotest
filename=pattern.dat
rw=randwrite
bs=64k
iodepth=16
size=32m
verify=pattern
verify_pattern=%o
do_verify=1
EOF
if run offset-pattern $((32 * MiB)) $((32 * MiB)); then
  echo "== offset-pattern through FUSE"
  if $CHECK offset-pattern "$MNT/fiotest/pattern.dat" $((32 * MiB)) 65536; then
    passed=$((passed + 1))
  else
    echo "FAIL offset-pattern through FUSE"; failures=$((failures + 1))
  fi
fi

# 7. fio's psync engine verifies, through the FUSE mount, the crc32c blocks
#    the engine wrote in test 1.
job fuse-psync-verify <<EOF
[fuse-psync-verify]
ioengine=psync
filename=$MNT/fiotest/seq.dat
rw=read
bs=1m
size=128m
verify=crc32c
EOF
run fuse-psync-verify 0 $((128 * MiB))

# 8. A read job on a file that does not exist: the engine lays it out first.
#    cfs_mount is a directory inside the mount; the relative name is relative
#    to it (/fiotest/new/laidout.dat in CFS).
job layout-read <<EOF
[layout-read]
ioengine=external:$ENGINE
cfs_mount=$MNT/fiotest
filename=new/laidout.dat
rw=read
bs=256k
iodepth=8
size=8m
EOF
if run layout-read 0 $((8 * MiB)); then
  size=$(stat -c %s "$MNT/fiotest/new/laidout.dat" 2>/dev/null || echo missing)
  if [ "$size" = $((8 * MiB)) ]; then
    echo "  laid out file is $size bytes through FUSE"; passed=$((passed + 1))
  else
    echo "FAIL layout-read: file through FUSE is $size bytes"; failures=$((failures + 1))
  fi
fi

# 9. Control: verifying data that carries no crc32c headers (the laid out file
#    of test 8) must fail, so the passes above mean the blocks were checked.
job verify-control <<EOF
[verify-control]
ioengine=external:$ENGINE
cfs_cluster=$ADDR
filename=/fiotest/new/laidout.dat
rw=read
bs=256k
iodepth=8
size=8m
verify=crc32c
EOF
expect_fail verify-control "verify: bad magic header"

# 10. cfs_stripe/cfs_unit give the layout of the files the job creates.
job striped <<EOF
[striped]
ioengine=external:$ENGINE
cfs_cluster=$ADDR
cfs_stripe=2+1
cfs_unit=256k
filename=/fiotest/striped.dat
rw=write
bs=1m
iodepth=4
size=4m
verify=crc32c
do_verify=1
EOF
if run striped $((4 * MiB)) $((4 * MiB)); then
  layout=$("$CFS" getstripe --cluster "$ADDR" --json /fiotest/striped.dat |
           python3 -c 'import json,sys; l=json.load(sys.stdin)["layout"]; print(l["k"], l["m"], l["unit"])')
  if [ "$layout" = "2 1 262144" ]; then
    echo "  layout 2+1, unit 256 KiB"; passed=$((passed + 1))
  else
    echo "FAIL striped: layout is \"$layout\", expected \"2 1 262144\""; failures=$((failures + 1))
  fi
fi

# 11. Bad options fail clearly.
job bad-cluster <<EOF
[bad-cluster]
ioengine=external:$ENGINE
cfs_cluster=127.0.0.1:1
filename=/x
rw=write
size=1m
EOF
expect_fail bad-cluster "cfs: cannot connect to 127.0.0.1:1"
job bad-mount <<EOF
[bad-mount]
ioengine=external:$ENGINE
cfs_mount=$D
filename=x
rw=write
size=1m
EOF
expect_fail bad-mount "not on a cfs-fuse mount"
job bad-stripe <<EOF
[bad-stripe]
ioengine=external:$ENGINE
cfs_cluster=$ADDR
cfs_stripe=4x2
filename=/x
rw=write
size=1m
EOF
expect_fail bad-stripe "cfs_stripe=4x2: want K+M"
job no-parity-hint <<EOF
[no-parity-hint]
ioengine=external:$ENGINE
cfs_cluster=$ADDR
cfs_stripe=6+0
filename=/fiotest/plain.dat
rw=write
bs=1m
iodepth=4
size=4m
verify=crc32c
do_verify=1
EOF
# A hint that names K names M too: 6+0 under the cluster's 4+2 default.
if run no-parity-hint $((4 * MiB)) $((4 * MiB)); then
  layout=$("$CFS" getstripe --cluster "$ADDR" --json /fiotest/plain.dat |
           python3 -c 'import json,sys; l=json.load(sys.stdin)["layout"]; print(l["k"], l["m"])')
  if [ "$layout" = "6 0" ]; then
    echo "  layout 6+0"; passed=$((passed + 1))
  else
    echo "FAIL no-parity-hint: layout is \"$layout\", expected \"6 0\""; failures=$((failures + 1))
  fi
fi

echo "fio engine tests: $passed passed, $failures failed"
[ $failures -eq 0 ]
