# shellcheck shell=bash
# Shared by prepare.sh and run.sh (sourced, not run): where the guest's kernel
# and initramfs are cached, and which installed Debian kernel the guest boots.

rg_log() { echo "rdma-guest: $*" >&2; }
rg_die() { echo "rdma-guest: error: $*" >&2; exit 2; }

# The cache: $CFS_RDMA_GUEST_CACHE, else /var/cache/cfs-rdma-guest when we can
# write there (root, CI) or it is already prepared, else ~/.cache/cfs-rdma-guest.
rg_cache_dir() {
  if [ -n "${CFS_RDMA_GUEST_CACHE:-}" ]; then echo "$CFS_RDMA_GUEST_CACHE"; return; fi
  local sys=/var/cache/cfs-rdma-guest
  if mkdir -p "$sys" 2>/dev/null && [ -w "$sys" ]; then echo "$sys"; return; fi
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/cfs-rdma-guest"
}

# The guest kernel: $CFS_RDMA_GUEST_KVER, else the newest installed kernel that
# has both /boot/vmlinuz-KVER and the rdma_rxe module (linux-image-amd64). The
# host's running kernel is never assumed to have an RDMA stack.
rg_kver() {
  if [ -n "${CFS_RDMA_GUEST_KVER:-}" ]; then echo "$CFS_RDMA_GUEST_KVER"; return; fi
  local k best=""
  for d in /lib/modules/*/; do
    k=$(basename "$d")
    [ -f "/boot/vmlinuz-$k" ] || continue
    compgen -G "$d/kernel/drivers/infiniband/sw/rxe/rdma_rxe.ko*" >/dev/null || continue
    best=$(printf '%s\n%s\n' "$best" "$k" | sed '/^$/d' | sort -V | tail -n1)
  done
  [ -n "$best" ] || return 1
  echo "$best"
}
