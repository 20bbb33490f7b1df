#!/usr/bin/env bash
# Prepares what scripts/rdma-guest/run.sh boots: the Debian kernel's vmlinux
# (extracted once from /boot/vmlinuz-KVER: decompressing the bzImage under TCG
# costs 8-10 s per boot) and a tiny initramfs (static busybox plus the virtio,
# 9p and overlay modules). Idempotent; returns at once when the cache is current.
# Usage: scripts/rdma-guest/prepare.sh [-q]
# Env: CFS_RDMA_GUEST_CACHE (cache dir), CFS_RDMA_GUEST_KVER (guest kernel).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
quiet=0; [ "${1:-}" = "-q" ] && quiet=1

hint="run scripts/install-deps.sh (it installs qemu-system-x86, linux-image-amd64, busybox-static, kmod, cpio, xz-utils)"
kver=$(rg_kver) || rg_die "no installed Debian kernel with the rdma_rxe module (/boot/vmlinuz-KVER + /lib/modules/KVER): $hint"
for t in qemu-system-x86_64 modprobe cpio gzip python3; do
  command -v "$t" >/dev/null || rg_die "$t not found: $hint"
done
[ -f /usr/share/qemu/qboot.rom ] || rg_die "/usr/share/qemu/qboot.rom not found: $hint"
busybox=/bin/busybox
[ -x "$busybox" ] || rg_die "$busybox not found: $hint"
if ldd "$busybox" >/dev/null 2>&1; then rg_die "$busybox is not static: install busybox-static"; fi

cache=$(rg_cache_dir)/$kver
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 300 9 || rg_die "another prepare.sh holds $cache/.lock"

# Anything that changes the outputs changes the stamp.
initmods=(virtio_pci 9pnet_virtio 9p overlay)
stamp=$( { echo "v2 $kver ${initmods[*]}"; stat -L -c '%n %s %Y' "/boot/vmlinuz-$kver" "$busybox" \
           "/lib/modules/$kver/modules.dep"; cat "$here/initramfs-init" "$0"; } | sha256sum | cut -d' ' -f1)
if [ -f "$cache/guest.env" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ]; then
  [ $quiet = 1 ] || rg_log "cache current: $cache (kernel $kver)"
  exit 0
fi
rg_log "preparing kernel $kver in $cache"
rm -f "$cache/stamp"

# vmlinux: the first compressed stream in the bzImage that unpacks to an ELF.
python3 - "/boot/vmlinuz-$kver" "$cache/vmlinux.tmp" <<'EOF'
import lzma, sys, zlib
data = open(sys.argv[1], 'rb').read()
def unxz(b): return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(b)
def ungz(b): return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(b)
for magic, dec in ((b'\xfd7zXZ\x00', unxz), (b'\x1f\x8b\x08', ungz)):
    pos = data.find(magic)
    while pos >= 0:
        try:
            out = dec(data[pos:])
            if out[:4] == b'\x7fELF':
                open(sys.argv[2], 'wb').write(out)
                sys.exit(0)
        except Exception:
            pass
        pos = data.find(magic, pos + 1)
sys.exit("no XZ or gzip payload unpacking to an ELF vmlinux in " + sys.argv[1])
EOF
# QEMU boots an ELF kernel only through its PVH entry note (type 0x12, owner Xen).
if command -v readelf >/dev/null && ! readelf -n "$cache/vmlinux.tmp" | grep -q 'Xen.*0x00000012'; then
  rg_die "vmlinux of $kver has no PVH entry note; QEMU cannot boot it directly"
fi
mv "$cache/vmlinux.tmp" "$cache/vmlinux"

# initramfs: busybox, the modules in dependency order, the init script.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/modules" "$stage/dev" "$stage/proc" "$stage/sys"
cp "$busybox" "$stage/bin/busybox"
cp "$here/initramfs-init" "$stage/init"
chmod 755 "$stage/init"
: >"$stage/modules.order"
for m in "${initmods[@]}"; do modprobe -S "$kver" --show-depends "$m"; done | awk '$1 == "insmod" {print $2}' | awk '!seen[$0]++' |
while read -r ko; do
  name=$(basename "$ko"); name=${name%.xz}; name=${name%.zst}
  case "$ko" in
    *.xz) xz -dc "$ko" >"$stage/modules/$name" ;;
    *.zst) zstd -qdc "$ko" >"$stage/modules/$name" ;;
    *) cp "$ko" "$stage/modules/$name" ;;
  esac
  echo "$name" >>"$stage/modules.order"
done
[ -s "$stage/modules.order" ] || rg_die "modprobe -S $kver found none of: ${initmods[*]}"
(cd "$stage" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$cache/initramfs.tmp"
mv "$cache/initramfs.tmp" "$cache/initramfs.cpio.gz"

cat >"$cache/guest.env" <<EOF
RG_KVER=$kver
RG_VMLINUX=$cache/vmlinux
RG_INITRD=$cache/initramfs.cpio.gz
EOF
echo "$stamp" >"$cache/stamp"
rg_log "prepared: $(du -h "$cache/vmlinux" | cut -f1) vmlinux, $(du -h "$cache/initramfs.cpio.gz" | cut -f1) initramfs ($(tr '\n' ' ' <"$stage/modules.order"))"
