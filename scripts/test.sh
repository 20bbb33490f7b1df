#!/usr/bin/env bash
# Installs what CFS needs, builds everything from scratch in build/ with warnings
# as errors, and runs the whole test suite (unit, fuzz, integration with real
# daemons and a real FUSE mount). Exits with ctest's status.
# Usage: scripts/test.sh [extra ctest args, e.g. -L unit or -R layout]
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
ctest --output-on-failure -j "$(nproc)" "$@"
rc=$?
set -e
exit $rc
