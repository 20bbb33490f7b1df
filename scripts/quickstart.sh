#!/usr/bin/env bash
# From a fresh Debian 12 machine to a working CFS mount: installs what is
# needed, builds, starts a local cluster (1 M-worker, 6 S-workers, all on
# loopback, state under /tmp/cfs-demo) mounted at /tmp/cfs-demo/mnt, and shows
# it working. Run as root or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DIR=${CFS_DEMO_DIR:-/tmp/cfs-demo}
MNT=$DIR/mnt
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing dependencies"
scripts/install-deps.sh

say "Building (build/)"
cmake -S "$root" -B "$root/build" -G Ninja >/dev/null
ninja -C "$root/build" cfs-meta cfs-storage cfs-fuse cfs-cli mount.cfs
CFS=$root/build/bin/cfs

if mountpoint -q "$MNT" 2>/dev/null || [ -f "$DIR/run/meta.pid" ]; then
  say "Stopping the previous demo cluster in $DIR"
  $SUDO "$CFS" local down --dir "$DIR" || true
fi

say "Starting a local cluster: cfs local up --dir $DIR --mount $MNT"
$SUDO "$CFS" local up --dir "$DIR" --mount "$MNT"

say "Writing files through the mount"
echo "hello from CFS" | $SUDO tee "$MNT/hello.txt" >/dev/null
$SUDO dd if=/dev/urandom of="$MNT/big.bin" bs=1M count=64 status=none
$SUDO mkdir -p "$MNT/projects/demo"
$SUDO cp "$root/README.md" "$MNT/projects/demo/"
$SUDO sync
echo "cat hello.txt: $($SUDO cat "$MNT/hello.txt")"

say "ls -l $MNT"
$SUDO ls -l "$MNT"
$SUDO ls -lR "$MNT/projects"

say "Checking big.bin byte for byte after a round trip"
sum_in=$($SUDO sha256sum "$MNT/big.bin" | cut -d' ' -f1)
$SUDO cp "$MNT/big.bin" "$DIR/big.copy"
sum_out=$(sha256sum "$DIR/big.copy" | cut -d' ' -f1)
$SUDO rm -f "$DIR/big.copy"
[ "$sum_in" = "$sum_out" ] && echo "sha256 $sum_in: identical"

say "cfs status"
$SUDO "$CFS" status --mount "$MNT"

say "cfs df"
$SUDO "$CFS" df --mount "$MNT"

say "cfs getstripe $MNT/big.bin"
$SUDO "$CFS" getstripe "$MNT/big.bin"

cat <<MSG

CFS is running and mounted at $MNT (state and logs under $DIR).
  use it:    ls $MNT; cp somefile $MNT/
  inspect:   $CFS status --mount $MNT; $CFS workers --mount $MNT
  stop it:   ${SUDO:+$SUDO }$CFS local down --dir $DIR
  restart:   ${SUDO:+$SUDO }$CFS local up --dir $DIR --mount $MNT   (same file system comes back)
MSG
