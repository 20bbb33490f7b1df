#!/usr/bin/env bash
# Installs what CFS needs, builds everything from scratch in build/ with warnings
# as errors, and runs the whole test suite (unit, fuzz, integration with real
# daemons and a real FUSE mount) on this host, then the rdma-labelled tests
# inside a QEMU guest with Soft-RoCE (scripts/rdma-guest/run.sh). Exits non-zero
# if either run fails.
# Usage: scripts/test.sh [extra ctest args for the host run, e.g. -L unit or -R layout]
# Env: CFS_SKIP_RDMA=1 skips the guest run (developers only; CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh

# Integration tests mount FUSE: they need /dev/fuse, fusermount3 and root (or
# user_allow_other, which install-deps.sh sets).
if [ ! -e /dev/fuse ]; then
  if [ "$(id -u)" -eq 0 ]; then mknod -m 666 /dev/fuse c 10 229 || true; fi
fi
[ -e /dev/fuse ] || echo "test.sh: warning: /dev/fuse is missing; FUSE tests will fail" >&2
command -v fusermount3 >/dev/null || echo "test.sh: warning: fusermount3 not found" >&2

rm -rf "$root/build"
cmake -S "$root" -B "$root/build" -G Ninja -DCFS_WERROR=ON -DCFS_FIO_ENGINE=ON
ninja -C "$root/build"

cd "$root/build"
set +e
# The rdma label needs real verbs: it runs in the guest below.
ctest --output-on-failure -j "$(nproc)" -LE rdma "$@"
rc=$?
rdma_rc=skipped
if [ "${CFS_SKIP_RDMA:-0}" != 1 ]; then
  echo "test.sh: running the rdma-labelled tests in a Soft-RoCE guest"
  "$root/scripts/rdma-guest/prepare.sh" &&
    "$root/scripts/rdma-guest/run.sh" -- ctest --output-on-failure -L rdma
  rdma_rc=$?
fi
set -e
echo "test.sh: host tests exit $rc; rdma tests in the guest exit $rdma_rc"
[ "$rc" = 0 ] || exit "$rc"
[ "$rdma_rc" = 0 ] || [ "$rdma_rc" = skipped ] || exit "$rdma_rc"
exit 0
