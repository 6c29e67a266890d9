#!/bin/sh
# Fetch Debian's kernel for the Linux test guest, without installing it: `apt-get download`
# the linux-image package that linux-image-amd64 points at, and `dpkg-deb -x` it into
# $HVLINUX_CACHE/kernel/<kver>/ (vmlinuz + the module subset the guest may need). No
# maintainer scripts, no initramfs-tools, no udev/systemd upgrade, /boot untouched.
# Idempotent and offline once done: does nothing when a usable kernel is already there
# (cached, or installed as /boot/vmlinuz-*-amd64 + /lib/modules). Run as root by `make deps`.
#
#   get-kernel.sh [--force]    --force: fetch the current package even if a kernel is found
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/guest/linux/common.sh
. "$here/common.sh"

force=0
[ "${1:-}" = --force ] && force=1

if [ $force = 0 ] && hvlinux_find_kernel; then
	echo "hvlinux: kernel $hvl_kver: $hvl_kernel"
	exit 0
fi

mkdir -p "$HVLINUX_CACHE/kernel" 2>/dev/null || true
[ -w "$HVLINUX_CACHE/kernel" ] ||
	hvlinux_die "cannot write $HVLINUX_CACHE/kernel: run as root (make deps) or set HVLINUX_CACHE"

meta=${HVLINUX_KERNEL_META:-linux-image-amd64}
pkg_of_meta()
{
	apt-cache depends "$meta" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
pkg=$(pkg_of_meta)
if [ -z "$pkg" ]; then
	apt-get update -q >/dev/null || true
	pkg=$(pkg_of_meta)
fi
[ -n "$pkg" ] || hvlinux_die "apt knows no $meta (apt-get update?)"

tmp=$(mktemp -d "$HVLINUX_CACHE/kernel/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "hvlinux: downloading $pkg"
(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg") ||
	hvlinux_die "apt-get download $pkg failed"
deb=$(ls "$tmp"/*.deb)
mkdir "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"

k=$(ls "$tmp"/x/boot/vmlinuz-* | head -n 1)
[ -f "$k" ] || hvlinux_die "$pkg has no /boot/vmlinuz-*"
kver=${k##*/vmlinuz-}
src=$tmp/x/lib/modules/$kver
[ -d "$src/kernel" ] || hvlinux_die "$pkg has no /lib/modules/$kver/kernel"

# Keep only what a disk-test guest can want (a few tens of MB instead of 400).
out=$tmp/$kver
mkdir -p "$out/modules/kernel"
cp "$k" "$out/vmlinuz"
cp "$tmp/x/boot/config-$kver" "$out/config" 2>/dev/null || true
cp "$src"/modules.builtin "$src"/modules.order "$out/modules/" 2>/dev/null || true
for p in drivers/block drivers/virtio drivers/ata drivers/scsi drivers/acpi drivers/nvme \
	drivers/input drivers/char/hw_random fs/ext4 fs/jbd2 fs/mbcache.ko crypto lib block arch; do
	[ -e "$src/kernel/$p" ] || continue
	mkdir -p "$out/modules/kernel/$(dirname "$p")"
	cp -a "$src/kernel/$p" "$out/modules/kernel/$p"
done
echo "$pkg $(dpkg-deb -f "$deb" Version)" >"$out/package"

rm -rf "$HVLINUX_CACHE/kernel/$kver"
mv "$out" "$HVLINUX_CACHE/kernel/$kver"
chmod -R a+rX "$HVLINUX_CACHE/kernel/$kver"
echo "hvlinux: kernel $kver ($pkg): $HVLINUX_CACHE/kernel/$kver/vmlinuz"
