#!/bin/bash
# PID 1 of the guest after switch_root (started by initramfs-init, run by the
# host's bash from the read-only host root): sets up Soft-RoCE, runs the
# command that run.sh put in the run directory (9p tag cfsrun), streams its
# output to the host over the virtio-serial port cfs.out, records its exit
# code in the run directory and powers off. Any set-up failure is written to
# the console (run.sh prints it) and to the run directory's status file.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
umask 022

up() { cut -d' ' -f1 /proc/uptime; }
log() { echo "rdma-guest [$(up) s]: $*" >/dev/console; }
poweroff_now() { sync; sleep 0.5; /bin/busybox poweroff -f; sleep 60; }
setup_fail() {
  log "SET-UP FAILED: $*"
  { echo "---- last kernel messages:"; dmesg | tail -n 40; } >/dev/console 2>&1
  echo "setup-failed $*" >>/run/cfs/status 2>/dev/null
  poweroff_now
}
exec </dev/null >/dev/console 2>&1
log "stage started"

mount -t tmpfs -o mode=0755 tmpfs /run || setup_fail "tmpfs on /run"
mkdir -p /run/cfs
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=262144 cfsrun /run/cfs \
  || setup_fail "mount of the run directory (9p tag cfsrun)"
# shellcheck source=/dev/null
. /run/cfs/params || setup_fail "no params in the run directory"

mkdir -p /dev/pts /dev/shm
mount -t devpts -o mode=0620,ptmxmode=0666 devpts /dev/pts || setup_fail "devpts"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || setup_fail "tmpfs on /dev/shm"
# /tmp lives in guest RAM: tests make their cluster directories there.
mount -t tmpfs -o "mode=1777,size=$RG_TMP_SIZE" tmpfs /tmp || setup_fail "tmpfs on /tmp"
for share in "${RG_SHARES[@]}"; do
  tag=${share%% *}; path=${share#* }
  mkdir -p "$path"
  mount -t 9p -o trans=virtio,version=9p2000.L,cache=mmap,msize=262144 "$tag" "$path" \
    || setup_fail "mount of $path (9p tag $tag) read-write"
done

log "loading modules: $RG_MODULES"
# shellcheck disable=SC2086
modprobe -a $RG_MODULES || setup_fail "modprobe -a $RG_MODULES (kernel $(uname -r))"
hostname cfs-rdma-guest
ip link set lo up || setup_fail "ip link set lo up"
ip link add rdma0 type dummy || setup_fail "ip link add rdma0 type dummy"
ip addr add "$RG_ADDR/24" dev rdma0 || setup_fail "ip addr add $RG_ADDR/24 dev rdma0"
ip link set rdma0 up || setup_fail "ip link set rdma0 up"
rdma link add "$RG_DEVICE" type rxe netdev rdma0 || setup_fail "rdma link add $RG_DEVICE type rxe netdev rdma0"

# The port must be ACTIVE and the RoCE v2 GID of the address present.
# shellcheck disable=SC2086
want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' ${RG_ADDR//./ })
port=/sys/class/infiniband/$RG_DEVICE/ports/1
gid_index=""
for _ in $(seq 1 300); do
  if grep -q ACTIVE "$port/state" 2>/dev/null; then
    for g in "$port"/gids/*; do
      i=${g##*/}
      if [ "$(cat "$g" 2>/dev/null)" = "$want" ] &&
         [ "$(cat "$port/gid_attrs/types/$i" 2>/dev/null)" = "RoCE v2" ]; then
        gid_index=$i; break 2
      fi
    done
  fi
  sleep 0.2
done
[ -n "$gid_index" ] || setup_fail "$RG_DEVICE port 1 not ACTIVE with a RoCE v2 GID for $RG_ADDR after 60 s (state: $(cat "$port/state" 2>/dev/null))"
log "$RG_DEVICE ACTIVE, RoCE v2 GID index $gid_index"

ulimit -l unlimited || setup_fail "ulimit -l unlimited"
ulimit -n 1048576 || ulimit -n 65536
[ -c /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229 || setup_fail "no /dev/fuse"
chmod 666 /dev/fuse
vport=""
for _ in $(seq 1 100); do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = cfs.out ] && vport=/dev/${p##*/} && break 2
  done
  sleep 0.1
done
[ -c "${vport:-/nonexistent}" ] || setup_fail "virtio-serial port cfs.out not found"

mapfile -d '' cmd </run/cfs/cmd
cwd=$(cat /run/cfs/cwd)
cd "$cwd" || setup_fail "cd $cwd"
echo "setup-ok $(up)" >>/run/cfs/status
: >/run/cfs/ready  # its mtime is the host's clock at this point
log "set-up done; running in $cwd: ${cmd[*]}"

# The host's exported environment, then ours on top.
# shellcheck source=/dev/null
. /run/cfs/env
export CFS_RDMA_GUEST=1 CFS_RDMA_ADDR="$RG_ADDR" CFS_RDMA_DEVICE="$RG_DEVICE" CFS_RDMA_GID_INDEX="$gid_index"

# One cat owns the port (it opens only once); the command writes into a FIFO.
mkfifo /run/out.fifo
cat /run/out.fifo >"$vport" &
catpid=$!
t0=$(up)
( echo "$BASHPID" >/run/cmd.pid; exec timeout -k 10 "$RG_INNER_TIMEOUT" "${cmd[@]}" ) >/run/out.fifo 2>&1 </dev/null
rc=$?
t1=$(up)
[ $rc = 124 ] && log "command timed out after $RG_INNER_TIMEOUT s"
# Leftovers (daemons in other sessions too) would keep the FIFO open.
kill -KILL -- "-$(cat /run/cmd.pid)" 2>/dev/null
for _ in $(seq 1 20); do kill -0 "$catpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$catpid" 2>/dev/null; then
  left=$(ps -e -o pid=,ppid=,comm= | awk -v c="$catpid" -v s=$$ '$1 != 1 && $1 != 2 && $2 != 2 && $1 != c && $1 != s')
  log "killing leftover processes: $(echo "$left" | awk '{print $1 "/" $3}' | tr '\n' ' ')"
  echo "$left" | awk '{print $1}' | xargs -r kill -KILL 2>/dev/null
fi
for _ in $(seq 1 100); do kill -0 "$catpid" 2>/dev/null || break; sleep 0.1; done
wait "$catpid" 2>/dev/null
echo "$rc" >/run/cfs/rc  # its mtime: the host's clock when the command ended
echo "done $t0 $t1" >>/run/cfs/status
log "command exited with $rc after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
poweroff_now
