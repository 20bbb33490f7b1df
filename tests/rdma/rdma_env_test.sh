#!/usr/bin/env bash
# The rdma-labelled tests' environment gives real verbs: the device is listed
# and ACTIVE with the RoCE v2 GID of CFS_RDMA_ADDR, memory locking is
# unlimited, /dev/fuse is usable, and RC SEND/RECV (ibv_rc_pingpong, buffers
# validated) and rdma_cm (rping, data validated) move the expected bytes, which
# the device's packet counters confirm. Runs inside scripts/rdma-guest/run.sh,
# or on a host with a real device when CFS_RDMA_DEVICE and CFS_RDMA_ADDR name it.
set -uo pipefail
fail() { echo "rdma_env_test: FAIL: $*" >&2; exit 1; }
note() { echo "rdma_env_test: $*"; }

dev=${CFS_RDMA_DEVICE:-}
addr=${CFS_RDMA_ADDR:-}
if [ -z "$dev" ] || [ -z "$addr" ] || [ ! -d "/sys/class/infiniband/$dev" ]; then
  have=$(ls /sys/class/infiniband 2>/dev/null | tr '\n' ' ')
  fail "no RDMA device${dev:+ named $dev} here (kernel $(uname -r); /sys/class/infiniband: ${have:-none};" \
       "CFS_RDMA_DEVICE='$dev' CFS_RDMA_ADDR='$addr'): run the rdma-labelled tests through" \
       "scripts/rdma-guest/run.sh, e.g. from the build dir: ../scripts/rdma-guest/run.sh -- ctest --output-on-failure -L rdma"
fi
for t in ibv_devices ibv_devinfo ibv_rc_pingpong rping ss; do
  command -v "$t" >/dev/null || fail "$t not found: run scripts/install-deps.sh (ibverbs-utils, rdmacm-utils, iproute2)"
done

ibv_devices | awk 'NR > 2 { print $1 }' | grep -qx "$dev" || fail "ibv_devices does not list $dev: $(ibv_devices)"
ibv_devinfo -d "$dev" -i 1 | grep -Eq 'state:[[:space:]]+PORT_ACTIVE' || fail "$dev port 1 not ACTIVE: $(ibv_devinfo -d "$dev" -i 1)"

# The GID index of addr (IPv4-mapped, RoCE v2), as the transport will look it up.
port=/sys/class/infiniband/$dev/ports/1
# shellcheck disable=SC2086
want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' ${addr//./ })
gid=""
for g in "$port"/gids/*; do
  i=${g##*/}
  if [ "$(cat "$g" 2>/dev/null)" = "$want" ] && [ "$(cat "$port/gid_attrs/types/$i" 2>/dev/null)" = "RoCE v2" ]; then
    gid=$i; break
  fi
done
[ -n "$gid" ] || fail "no RoCE v2 GID $want for $addr on $dev"
[ -z "${CFS_RDMA_GID_INDEX:-}" ] || [ "$CFS_RDMA_GID_INDEX" = "$gid" ] ||
  fail "CFS_RDMA_GID_INDEX=$CFS_RDMA_GID_INDEX but the GID of $addr is at index $gid"
note "$dev ACTIVE, GID index $gid = $want"

[ "$(ulimit -l)" = unlimited ] || fail "ulimit -l is $(ulimit -l) KiB, not unlimited: verbs registrations would fail"
[ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ] || fail "/dev/fuse is missing or not read-write"

work=$(mktemp -d)
trap 'pkill -KILL -P $$ 2>/dev/null; rm -rf "$work"' EXIT
counter() { cat "$port/hw_counters/$1" 2>/dev/null || fail "no $port/hw_counters/$1"; }
show() { for f in "$@"; do echo "---- $f"; cat "$work/$f"; done >&2; }

# RC SEND/RECV: 300 round trips of 64 KiB, both sides validating the buffers.
size=65536 iters=300
bytes=$((size * iters * 2))
sent0=$(counter sent_pkts)
timeout 180 ibv_rc_pingpong -d "$dev" -g "$gid" -p 18515 -s $size -n $iters -c >"$work/pp-server" 2>&1 &
srv=$!
for _ in $(seq 1 100); do ss -Hltn 'sport = :18515' | grep -q . && break; sleep 0.2; done
timeout 180 ibv_rc_pingpong -d "$dev" -g "$gid" -p 18515 -s $size -n $iters -c "$addr" >"$work/pp-client" 2>&1
crc=$?
wait $srv; src=$?
[ $crc = 0 ] && [ $src = 0 ] || { show pp-server pp-client; fail "ibv_rc_pingpong: client exit $crc, server exit $src"; }
for side in server client; do
  grep -q "^$bytes bytes in" "$work/pp-$side" || { show pp-server pp-client; fail "ibv_rc_pingpong $side did not move $bytes bytes"; }
done
sent=$(( $(counter sent_pkts) - sent0 ))
# Each 64 KiB message is at least one packet per MTU (<= 4096 bytes).
min_pkts=$((iters * 2 * size / 4096))
[ $sent -ge $min_pkts ] || fail "$dev sent $sent packets during ibv_rc_pingpong, expected >= $min_pkts: the data did not go through $dev"
note "ibv_rc_pingpong: $(grep -h 'bytes in' "$work/pp-client"); $dev sent $sent packets"

# rdma_cm: rping's client validates each of 20 pings it gets back.
count=20
timeout 120 rping -s -a "$addr" -p 7174 -C $count -S 100 >"$work/rping-server" 2>&1 &
srv=$!
crc=1
for attempt in 1 2 3 4 5; do
  sleep 1
  timeout 120 rping -c -a "$addr" -p 7174 -C $count -S 100 -v -V >"$work/rping-client" 2>&1 && { crc=0; break; }
  kill -0 $srv 2>/dev/null || break
  note "rping client attempt $attempt failed, retrying"
done
wait $srv; src=$?
[ $crc = 0 ] && [ $src = 0 ] || { show rping-server rping-client; fail "rping: client exit $crc, server exit $src"; }
got=$(grep -c '^ping data: rdma-ping-' "$work/rping-client")
[ "$got" = $count ] || { show rping-client; fail "rping returned $got validated pings, expected $count"; }
note "rping: $got pings of 100 bytes validated over rdma_cm to $addr"
echo "rdma_env_test: PASS"
