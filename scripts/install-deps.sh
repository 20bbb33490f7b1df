#!/usr/bin/env bash
# Installs everything CFS needs to build, run and test on a fresh Debian 12 machine.
# Usage: scripts/install-deps.sh [--bench]   (--bench adds fio, bindfs and GlusterFS for benchmarks)
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS=(
  build-essential cmake ninja-build pkg-config ccache git
  librocksdb-dev libfuse3-dev fuse3 libxxhash-dev libisal-dev
  libprotobuf-dev protobuf-compiler libspdlog-dev libfmt-dev libcli11-dev
  nlohmann-json3-dev libboost-dev libgtest-dev libgmock-dev
  clang libclang-rt-14-dev
  python3 procps psmisc iproute2 util-linux attr
)
if [ "${1:-}" = "--bench" ]; then
  PKGS+=(fio bindfs glusterfs-server glusterfs-client iperf3)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
# FUSE: allow_other for non-root mounts and the cfs mount helper need this.
if [ -f /etc/fuse.conf ] && ! grep -q '^user_allow_other' /etc/fuse.conf; then
  echo user_allow_other | $SUDO tee -a /etc/fuse.conf >/dev/null
fi
