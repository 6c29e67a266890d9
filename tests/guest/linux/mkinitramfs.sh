#!/usr/bin/env bash
# Build the Linux test guest's initramfs (cpio newc, gzip): busybox-static, ./init, and the
# kernel modules for virtio-blk/virtio-scsi/IDE disks, ext2 (via ext4) and the ACPI power
# button, decompressed, with a load list in dependency order.
#
#   mkinitramfs.sh [OUT.cpio.gz]
#
# The result is cached as <cache>/initramfs-<kver>-<hash>.cpio.gz, where <hash> covers this
# script, init, common.sh and the busybox binary; a cached one is reused. <cache> is
# $HVLINUX_CACHE (default /var/cache/hvcluster-test) if writable, else ~/.cache/hvcluster-test,
# else $TMPDIR/hvcluster-test-<uid>.
# Prints the path of the result (OUT when given: the cached file is copied there).
# Exit 77 when there is no kernel (see kernel-path.sh), 1 on other errors.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/guest/linux/common.sh
. "$here/common.sh"

out=${1:-}
busybox=${HVLINUX_BUSYBOX:-/bin/busybox}
# What the guest wants; dependencies are added. Missing ones are skipped with a warning.
# /init loads the "core" group, and the "alt" group only when no virtio-blk disk shows up
# (probing the IDE controllers costs ~0.5 s under TCG).
want_core=(virtio_pci virtio_blk crc32c_generic ext4 button evdev)
want_alt=(virtio_scsi sd_mod ata_piix ata_generic)

if ! hvlinux_find_kernel; then
	hvlinux_no_kernel_msg
	exit 77
fi
# not grep -q: it stops reading at the match, and under pipefail the SIGPIPE of
# busybox --list would then fail the test at random
if ! { [[ -x $busybox ]] && "$busybox" --list | grep -x mke2fs >/dev/null; }; then
	hvlinux_die "$busybox missing or not busybox-static with mke2fs (apt-get install busybox-static)"
fi
command -v gzip >/dev/null || hvlinux_die "gzip not found"

cache=
for c in "$HVLINUX_CACHE" "${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/hvcluster-test" \
	"${TMPDIR:-/tmp}/hvcluster-test-$(id -u)"; do
	if mkdir -p "$c" 2>/dev/null && [[ -w $c ]]; then
		cache=$c
		break
	fi
done
[[ -n $cache ]] || hvlinux_die "no writable cache directory"
hash=$(cat "$0" "$here/init" "$here/common.sh" "$busybox" | sha256sum | cut -c1-16)
result=$cache/initramfs-$hvl_kver-$hash.cpio.gz

emit()
{
	if [[ -n $out ]]; then
		cp "$result" "$out.tmp.$$"
		mv "$out.tmp.$$" "$out"
		echo "$out"
	else
		echo "$result"
	fi
}

if [[ -s $result ]]; then
	touch "$result" 2>/dev/null || true # last use, for the clean-up below
	emit
	exit 0
fi

tmp=$(mktemp -d "$cache/.mkinitramfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,mnt,tmp,lib/modules}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$here/init" "$root/init"
chmod 755 "$root/init" "$root/bin/busybox"

# name -> .ko file ('-' and '_' are the same in module names)
declare -A path=()
while IFS= read -r f; do
	n=${f##*/}
	n=${n%%.ko*}
	path[${n//-/_}]=$f
done < <(find "$hvl_modules/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
declare -A builtin=()
if [[ -r $hvl_modules/modules.builtin ]]; then
	while IFS= read -r f; do
		n=${f##*/}
		n=${n%.ko}
		builtin[${n//-/_}]=1
	done <"$hvl_modules/modules.builtin"
fi

# modinfo_field FILE FIELD: the .modinfo field of a (possibly compressed) module
modinfo_field()
{
	local cat=cat
	case $1 in
	*.xz) cat="xz -dc" ;;
	*.zst) cat="zstd -dcq" ;;
	*.gz) cat="gzip -dc" ;;
	esac
	$cat "$1" | tr '\0' '\n' | sed -n "s/^$2=//p" | head -n 1 || true
}

declare -A state=() # 1: being visited, 2: done
order=()
visit()
{
	local n=${1//-/_} d f
	[[ ${state[$n]:-} ]] && return 0
	if [[ ${builtin[$n]:-} ]]; then
		state[$n]=2
		return 0
	fi
	f=${path[$n]:-}
	if [[ -z $f ]]; then
		echo "mkinitramfs: warning: no module $n in $hvl_modules" >&2
		state[$n]=2
		return 0
	fi
	state[$n]=1
	for d in $(modinfo_field "$f" depends | tr ',' ' '); do
		visit "$d"
	done
	# "softdep=pre: a b post: c": load the pre ones first when they are real module names
	# (aliases such as crypto-crc32c are not resolved: list the module in want instead).
	local sd pre=0
	for sd in $(modinfo_field "$f" softdep); do
		case $sd in
		pre:) pre=1 ;;
		post:) pre=0 ;;
		*) [[ $pre = 1 && -n ${path[${sd//-/_}]:-} ]] && visit "$sd" ;;
		esac
	done
	state[$n]=2
	order+=("$n")
}
for m in "${want_core[@]}"; do
	visit "$m"
done
ncore=${#order[@]}
for m in "${want_alt[@]}"; do
	visit "$m"
done

: >"$root/lib/modules/load.list"
i=0
for n in "${order[@]}"; do
	group=core
	[[ $i -lt $ncore ]] || group=alt
	i=$((i + 1))
	f=${path[$n]}
	case $f in
	*.xz) xz -dc "$f" ;;
	*.zst) zstd -dcq "$f" ;;
	*.gz) gzip -dc "$f" ;;
	*) cat "$f" ;;
	esac >"$root/lib/modules/$n.ko"
	echo "$group $n.ko" >>"$root/lib/modules/load.list"
done

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	"$busybox" cpio -o -H newc -R 0:0 --renumber-inodes --ignore-devno 2>/dev/null) |
	gzip -9n >"$tmp/initramfs.cpio.gz"
mv "$tmp/initramfs.cpio.gz" "$result"
chmod 644 "$result"
# Builds unused for a day are stale (the script, init, busybox or kernel changed). Not
# sooner: another checkout may be booting its own build right now.
find "$cache" -maxdepth 1 -name 'initramfs-*.cpio.gz' -mtime +0 -delete 2>/dev/null || true
emit
