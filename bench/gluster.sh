#!/usr/bin/env bash
# Sets up (up) or tears down (down) a GlusterFS peer for the benchmarks: a
# distributed volume of 4 bricks (or, with --disperse K+M, a dispersed volume
# of K+M bricks, Reed-Solomon with M redundancy: GlusterFS's erasure coding)
# under DIR on this machine, mounted with the glusterfs FUSE client at MNT.
# Needs root and Debian's glusterfs-server and glusterfs-client
# (scripts/install-deps.sh --bench).
#
#   bench/gluster.sh up   [--dir DIR] [--mount MNT] [--bricks N] [--disperse K+M] [--volume NAME]
#   bench/gluster.sh down [--dir DIR] [--mount MNT] [--volume NAME]
#
# Defaults: DIR=/var/tmp/cfs-bench/gluster, MNT=/mnt/cfs-bench-gluster, 4 bricks,
# volume name cfsbench. `up` is idempotent after a failed run: it tears down
# first. `down` unmounts, stops and deletes the volume, stops the glusterd this
# script started (unless another volume is still defined), and removes DIR.
set -euo pipefail

VOL=cfsbench
DIR=/var/tmp/cfs-bench/gluster
MNT=/mnt/cfs-bench-gluster
BRICKS=4
DISPERSE=""   # K+M: a dispersed (erasure-coded) volume of K+M bricks
cmd=${1:-}
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --mount) MNT=$2; shift 2 ;;
    --bricks) BRICKS=$2; shift 2 ;;
    --disperse) DISPERSE=$2; shift 2 ;;
    --volume) VOL=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "gluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

die() { echo "gluster.sh: $*" >&2; exit 1; }
if [ -n "$DISPERSE" ]; then
  [[ "$DISPERSE" =~ ^([0-9]+)\+([0-9]+)$ ]] || die "--disperse wants K+M, e.g. 4+2 (got $DISPERSE)"
  DK=${BASH_REMATCH[1]} DM=${BASH_REMATCH[2]}
  [ "$DM" -ge 1 ] && [ "$DK" -gt "$DM" ] || die "--disperse K+M needs M >= 1 and K > M (gluster's rule)"
  BRICKS=$((DK + DM))
fi
G() { timeout 60 gluster --mode=script "$@"; }
PIDFILE=/run/cfs-bench-glusterd.pid

[ "$(id -u)" -eq 0 ] || die "must run as root (glusterd and FUSE mounts need it)"
for b in glusterd gluster glusterfs; do
  command -v $b >/dev/null || die "$b not found; run scripts/install-deps.sh --bench"
done

# Brick host: glusterd refuses "localhost"; the hostname works if it resolves.
HOST=$(hostname)
getent hosts "$HOST" >/dev/null || HOST=$(hostname -I | awk '{print $1}')
[ -n "$HOST" ] || die "cannot find a host name or address for the bricks"

glusterd_running() { pgrep -x glusterd >/dev/null; }

start_glusterd() {
  glusterd_running && return 0
  mkdir -p "$DIR"
  glusterd -p "$PIDFILE" --log-file="$DIR/glusterd.log" || die "glusterd failed to start (see $DIR/glusterd.log)"
  for _ in $(seq 50); do
    G volume list >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "glusterd does not answer (see $DIR/glusterd.log)"
}

down() {
  if mountpoint -q "$MNT" 2>/dev/null; then
    umount "$MNT" 2>/dev/null || umount -l "$MNT" || true
  fi
  if glusterd_running; then
    if G volume info "$VOL" >/dev/null 2>&1; then
      G volume stop "$VOL" force >/dev/null 2>&1 || true
      G volume delete "$VOL" >/dev/null 2>&1 || true
    fi
  fi
  # Brick processes of our volume that survived the stop.
  for p in $(pgrep -f "glusterfsd.*--volfile-id $VOL\." || true); do kill "$p" 2>/dev/null || true; done
  # Stop glusterd only if we started it (its pid file is ours) and no other
  # benchmark volume still needs it.
  others=""
  glusterd_running && others=$(G volume list 2>/dev/null | grep -vx "No volumes present in cluster" || true)
  if [ -f "$PIDFILE" ] && [ -z "$others" ]; then
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
  fi
  rm -rf "$DIR"
  rmdir "$MNT" 2>/dev/null || true
}

up() {
  down
  mkdir -p "$DIR" "$MNT"
  start_glusterd
  bricks=()
  for i in $(seq 0 $((BRICKS - 1))); do
    mkdir -p "$DIR/brick$i"
    bricks+=("$HOST:$DIR/brick$i")
  done
  # force: the bricks live on the root file system (and, dispersed, all on one
  # server), which gluster warns about.
  kind=()
  [ -n "$DISPERSE" ] && kind=(disperse "$BRICKS" redundancy "$DM")
  G volume create "$VOL" "${kind[@]}" transport tcp "${bricks[@]}" force >/dev/null || die "volume create failed"
  G volume start "$VOL" >/dev/null || die "volume start failed"
  timeout 60 mount -t glusterfs "$HOST:/$VOL" "$MNT" || die "mount of $HOST:/$VOL on $MNT failed"
  for _ in $(seq 50); do
    if touch "$MNT/.probe" 2>/dev/null && rm -f "$MNT/.probe"; then
      echo "gluster.sh: volume $VOL (${DISPERSE:+disperse $DISPERSE, }$BRICKS bricks under $DIR) mounted on $MNT"
      return 0
    fi
    sleep 0.2
  done
  die "mount on $MNT does not serve requests"
}

case "$cmd" in
  up) up ;;
  down) down; echo "gluster.sh: torn down" ;;
  *) echo "usage: $0 up|down [--dir DIR] [--mount MNT] [--bricks N] [--disperse K+M] [--volume NAME]" >&2; exit 2 ;;
esac
