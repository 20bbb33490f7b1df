#!/usr/bin/env bash
# Boots a QEMU guest running Debian's kernel with Soft-RoCE (rdma_rxe on a
# dummy netdev rdma0, 10.77.0.1/24, device rxe0) and runs one command in it,
# in the same directory as here, with the same environment plus
# CFS_RDMA_GUEST=1 CFS_RDMA_ADDR CFS_RDMA_DEVICE CFS_RDMA_GID_INDEX.
# The guest sees the host's / read-only (writes land in a throwaway tmpfs), the
# git work tree around the current directory read-write, and a tmpfs /tmp.
# The command's output streams to stdout; its exit code is ours. When set-up
# fails or time runs out, the guest's console is printed and we exit non-zero
# (125 set-up failure, 124 timeout, 126 guest died).
# Usage: scripts/rdma-guest/run.sh [--timeout SECS] [--mem MiB] [--smp N]
#                                  [--share DIR]... [--verbose] -- CMD ARGS...
# See docs/rdma.md ("Test harness") for the environment knobs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

timeout_s=${CFS_RDMA_GUEST_TIMEOUT:-1800}
mem=${CFS_RDMA_GUEST_MEM:-4096}
smp=${CFS_RDMA_GUEST_SMP:-2}
verbose=${CFS_RDMA_GUEST_VERBOSE:-0}
shares=()
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_s=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --share) shares+=("$(cd "$2" && pwd)"); shift 2 ;;
    --verbose) verbose=1; shift ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
  esac
done
[ $# -gt 0 ] || usage
[[ $timeout_s =~ ^[0-9]+$ && $timeout_s -ge 60 ]] || rg_die "--timeout must be a number of seconds >= 60"
[[ $mem =~ ^[0-9]+$ && $mem -ge 1024 ]] || rg_die "--mem must be MiB >= 1024"

"$here/prepare.sh" -q
cache=$(rg_cache_dir)/$(rg_kver)
# shellcheck source=/dev/null
. "$cache/guest.env"

# Read-write shares: the git work tree around the current directory (or the
# directory itself), plus --share. They appear at the same paths in the guest.
cwd=$(pwd)
shares=("$(git -C "$cwd" rev-parse --show-toplevel 2>/dev/null || echo "$cwd")" "${shares[@]}")
for s in "${shares[@]}"; do [ "$s" != / ] || rg_die "refusing to share / read-write"; done

run=$(mktemp -d "${TMPDIR:-/tmp}/cfs-rdma-guest.XXXXXX")
qpid=""
# shellcheck disable=SC2317
cleanup() {
  [ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
  exec 3>&-
  if [ "${CFS_RDMA_GUEST_KEEP:-0}" = 1 ]; then rg_log "run directory kept: $run"; else rm -rf "$run"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '%s\0' "$@" >"$run/cmd"
echo "$cwd" >"$run/cwd"
# The exported environment, minus what belongs to this shell or this host
# (TMPDIR too: the guest's /tmp is its own tmpfs).
for n in $(compgen -e); do
  case "$n" in PWD|OLDPWD|SHLVL|_|SHELLOPTS|BASHOPTS|HOSTNAME|DISPLAY|XDG_RUNTIME_DIR|SSH_*|TMPDIR) continue ;; esac
  printf 'export %s=%q\n' "$n" "${!n}"
done >"$run/env"
# shellcheck disable=SC2016
echo 'export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"' >>"$run/env"
modules="crc32_generic rdma_rxe ib_uverbs rdma_ucm fuse dummy virtio_console ${CFS_RDMA_GUEST_EXTRA_MODULES:-}"
# The command gets the outer budget minus time to boot and to report, so a
# hung command is killed in the guest and its output still reaches us.
inner=$((timeout_s - 90)); [ $inner -ge $((timeout_s / 2)) ] || inner=$((timeout_s / 2))
{
  echo "RG_MODULES='$modules'"
  echo "RG_ADDR=10.77.0.1 RG_DEVICE=rxe0 RG_INNER_TIMEOUT=$inner"
  echo "RG_TMP_SIZE=$((mem * 3 / 4))m"
  printf 'RG_SHARES=('
  i=0; for s in "${shares[@]}"; do printf '%q ' "share$i $s"; i=$((i + 1)); done
  echo ')'
} >"$run/params"

# TCG unless real KVM is there (this machine's /dev/kvm is kvm_pvm, which cannot
# run Debian's kernel; see docs/rdma.md).
accel=${CFS_RDMA_GUEST_ACCEL:-auto}
if [ "$accel" = auto ]; then
  accel=tcg
  if [ -w /dev/kvm ] && [ ! -e /sys/module/kvm_pvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm; fi
fi
# shellcheck disable=SC2054
case "$accel" in
  tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
  kvm) accel_args=(-accel kvm -cpu host) ;;
  *) rg_die "CFS_RDMA_GUEST_ACCEL must be auto, tcg or kvm" ;;
esac
loglevel=4; [ "$verbose" = 1 ] && loglevel=7
# shellcheck disable=SC2054
qemu=(qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot -nic none
  -machine pc "${accel_args[@]}" -smp "$smp" -m "$mem"
  -bios /usr/share/qemu/qboot.rom -kernel "$RG_VMLINUX" -initrd "$RG_INITRD"
  -append "console=ttyS0 panic=-1 loglevel=$loglevel mitigations=off cfs.upper=$((mem / 4))m cfs.stage=$here/guest-stage.sh"
  -serial "file:$run/console.log"
  -device virtio-serial-pci -chardev stdio,id=cfsout,signal=off -device virtserialport,chardev=cfsout,name=cfs.out
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
  -fsdev local,id=cfsrun,path="$run",security_model=none
  -device virtio-9p-pci,fsdev=cfsrun,mount_tag=cfsrun)
i=0
for s in "${shares[@]}"; do
  qemu+=(-fsdev "local,id=share$i,path=$s,security_model=none,multidevs=remap"
         -device "virtio-9p-pci,fsdev=share$i,mount_tag=share$i")
  i=$((i + 1))
done

show_console() {
  echo "rdma-guest: ---- guest console ($1) ----" >&2
  tr -d '\r' <"$run/console.log" >&2 || true
  if [ -s "$run/qemu.err" ]; then echo "rdma-guest: ---- qemu stderr ----" >&2; cat "$run/qemu.err" >&2; fi
  echo "rdma-guest: ---- end of guest console ----" >&2
}

# QEMU's stdin must never reach EOF (the virtio port would count as closed and
# the guest's writes would block): a FIFO we hold open read-write.
mkfifo "$run/stdin"
exec 3<>"$run/stdin"
: >"$run/console.log"
tailpid=""
if [ "$verbose" = 1 ]; then tail -f "$run/console.log" >&2 & tailpid=$!; fi
rg_log "booting kernel $RG_KVER ($accel, $smp CPUs, $mem MiB, timeout ${timeout_s} s); shares: ${shares[*]}"
start=$(date +%s)
set +e
timeout -k 10 "$timeout_s" "${qemu[@]}" <&3 2>"$run/qemu.err" &
qpid=$!
wait "$qpid"
qrc=$?
qpid=""
set -e
[ -z "$tailpid" ] || kill "$tailpid" 2>/dev/null || true
elapsed=$(( $(date +%s) - start ))

status=$(cat "$run/status" 2>/dev/null || true)
if ! grep -q '^setup-ok' <<<"$status"; then
  rc=125
  if [ $qrc = 124 ] || [ $qrc = 137 ]; then why="timed out after ${timeout_s} s before set-up finished"; rc=124
  elif grep -q '^setup-failed' <<<"$status"; then why=$(grep '^setup-failed' <<<"$status" | head -n1)
  else why="guest stopped before set-up finished (qemu exit $qrc)"; fi
  show_console "$why"
  rg_log "error: guest set-up failed: $why"
  exit $rc
fi
boot=$(( $(stat -c %Y "$run/ready") - start ))
if [ ! -f "$run/rc" ]; then
  if [ $qrc = 124 ] || [ $qrc = 137 ]; then why="timed out after ${timeout_s} s (qemu killed)"; rc=124
  else why="guest died while the command ran (qemu exit $qrc)"; rc=126; fi
  show_console "$why"
  rg_log "error: $why"
  exit $rc
fi
rc=$(cat "$run/rc")
ran=$(awk '/^done/ { printf "%.1f", $3 - $2 }' <<<"$status")
if [ "$rc" = 124 ]; then
  show_console "the command timed out after $inner s in the guest"
elif [ "$rc" != 0 ] && grep -qE 'Out of memory|BUG:|Oops|Call Trace' "$run/console.log"; then
  show_console "kernel trouble while the command ran"
fi
rg_log "guest ready ${boot} s after start; command exited $rc after ${ran} s; ${elapsed} s in all"
exit "$rc"
