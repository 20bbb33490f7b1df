#!/usr/bin/env bash
# Issue 4 point 8: a C program built against the INSTALLED headers and
# `pkg-config cfs` checkpoints from 8 processes on a real local cluster,
# loses a writer before a second commit, and restarts from the latest complete
# set with its content verified (see ckpt_ranks.c).
# Usage: check_ckpt_ranks.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
CFS="$BUILD/bin/cfs"
P=$(mktemp -d /tmp/cfs-ckpt-install-XXXXXX)
D=$(mktemp -d /tmp/cfs-ckpt-cluster-XXXXXX)
cleanup() {
  "$CFS" local down --dir "$D/cluster" >/dev/null 2>&1 || true
  if mountpoint -q "$D/mnt" 2>/dev/null; then fusermount3 -u -z "$D/mnt" || true; fi
  rm -rf "$P" "$D"
}
trap cleanup EXIT

cmake --install "$BUILD" --prefix "$P" >/dev/null
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
# Only the installed include/ and lib/ may be used, never the source tree.
cc -std=gnu11 -O2 -Wall -Wextra -Werror "$SRC/tests/install/ckpt_ranks.c" -o "$P/ckpt_ranks" \
   $(pkg-config --cflags --libs cfs)

if ! "$CFS" local up --dir "$D/cluster" --mount "$D/mnt" --workers 6 > "$D/up.log" 2>&1; then
  echo "check_ckpt_ranks: cfs local up failed:"; cat "$D/up.log"; exit 1
fi
ADDR=$(cat "$D/cluster/run/meta.addr")
echo "check_ckpt_ranks: cluster $ADDR (6 S-workers), program $P/ckpt_ranks"
if ! LD_LIBRARY_PATH="$P/lib" "$P/ckpt_ranks" "$ADDR"; then
  echo "check_ckpt_ranks: FAILED (daemon logs in $D/cluster are removed on exit; tail of cfs-meta's:)"
  tail -n 20 "$D/cluster/log/meta.log" 2>/dev/null || true
  exit 1
fi
echo "check_ckpt_ranks: OK"
