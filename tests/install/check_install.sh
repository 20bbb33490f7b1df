#!/usr/bin/env bash
# Installs the build into a temporary prefix and checks the layout users rely
# on (issue 2 point 8), then builds a C program against the installed headers
# with pkg-config and with CMake's find_package, and runs it.
set -euo pipefail
BUILD=$1
SRC=$2
P=$(mktemp -d /tmp/cfs-install-XXXXXX)
trap 'rm -rf "$P"' EXIT
cmake --install "$BUILD" --prefix "$P" >/dev/null
fail=0
for f in bin/cfs bin/cfs-meta bin/cfs-storage bin/cfs-fuse sbin/mount.cfs lib/libcfs.so \
         include/cfs/cfs.h lib/pkgconfig/cfs.pc lib/cmake/cfs/cfsConfig.cmake; do
  if [ ! -e "$P/$f" ]; then echo "missing after install: $f"; fail=1; fi
done
[ $fail -eq 0 ] || exit 1
# Only the public C API is exported.
bad=$(nm -D --defined-only "$P/lib/libcfs.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^cfs_' | grep -v '^CFS_' || true)
if [ -n "$bad" ]; then echo "libcfs.so exports non-API symbols:"; echo "$bad" | head; exit 1; fi

cat > "$P/t.c" <<'C'
#include <cfs/cfs.h>
#include <stdio.h>
#include <string.h>
int main(void) {
  cfs_ctx* ctx = NULL;
  /* Nothing listens on port 1: a clear error, not a crash. */
  int rc = cfs_mount("127.0.0.1:1", NULL, &ctx);
  printf("version %s mount rc %d (%s)\n", cfs_version(), rc, cfs_strerror(rc));
  if (strcmp(cfs_version(), "0.2.0") != 0) return 1;
  return rc < 0 && ctx == NULL ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
cc -std=c99 -Wall -Werror "$P/t.c" -o "$P/t" $(pkg-config --cflags --libs cfs)
LD_LIBRARY_PATH="$P/lib" "$P/t"

mkdir -p "$P/cm"
cat > "$P/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(t C)
find_package(cfs REQUIRED)
add_executable(t ../t.c)
target_link_libraries(t cfs::cfs)
CM
cmake -S "$P/cm" -B "$P/cm/b" -DCMAKE_PREFIX_PATH="$P" >/dev/null
cmake --build "$P/cm/b" >/dev/null
LD_LIBRARY_PATH="$P/lib" "$P/cm/b/t"
echo "install layout OK"
