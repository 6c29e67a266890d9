# shellcheck shell=sh
# Shared helpers of the Linux test guest scripts (sourced, POSIX sh).
#
# Where things live:
#   $HVLINUX_CACHE (default /var/cache/hvcluster-test)
#     kernel/<kver>/vmlinuz          Debian kernel, extracted by get-kernel.sh
#     kernel/<kver>/config
#     kernel/<kver>/modules/         subset of /lib/modules/<kver>/ (kernel/..., modules.builtin)
#     initramfs-<kver>-<hash>.cpio.gz  built by mkinitramfs.sh
# A kernel installed the normal way (/boot/vmlinuz-<kver> + /lib/modules/<kver>) is used
# when the cache has none. HVLINUX_KERNEL + HVLINUX_MODULES override both.

HVLINUX_CACHE=${HVLINUX_CACHE:-/var/cache/hvcluster-test}

hvlinux_die()
{
	echo "hvlinux: $*" >&2
	exit 1
}

# hvlinux_find_kernel: sets hvl_kernel, hvl_modules (dir holding kernel/ and modules.builtin)
# and hvl_kver; returns 1 when no usable kernel is found.
hvlinux_find_kernel()
{
	hvl_kernel='' hvl_modules='' hvl_kver=''
	if [ -n "${HVLINUX_KERNEL:-}" ]; then
		hvl_kernel=$HVLINUX_KERNEL
		hvl_kver=$(basename "$hvl_kernel" | sed 's/^vmlinuz-//')
		hvl_modules=${HVLINUX_MODULES:-/lib/modules/$hvl_kver}
		[ -r "$hvl_kernel" ] && [ -d "$hvl_modules/kernel" ] && return 0
		echo "hvlinux: HVLINUX_KERNEL=$hvl_kernel unreadable or no modules in $hvl_modules" >&2
		return 1
	fi
	# Newest first: the extracted cache, then installed kernels.
	for d in $(ls -d "$HVLINUX_CACHE"/kernel/*/ 2>/dev/null | sort -rV); do
		d=${d%/}
		if [ -r "$d/vmlinuz" ] && [ -d "$d/modules/kernel" ]; then
			hvl_kernel=$d/vmlinuz hvl_modules=$d/modules hvl_kver=$(basename "$d")
			return 0
		fi
	done
	for k in $(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -rV); do
		v=${k#/boot/vmlinuz-}
		if [ -r "$k" ] && [ -d "/lib/modules/$v/kernel" ]; then
			hvl_kernel=$k hvl_modules=/lib/modules/$v hvl_kver=$v
			return 0
		fi
	done
	return 1
}

hvlinux_no_kernel_msg()
{
	echo "hvlinux: no Linux kernel for the test guest: run 'tests/guest/linux/get-kernel.sh' as root" \
		"(make deps does), or install linux-image-amd64, or set HVLINUX_KERNEL/HVLINUX_MODULES" >&2
}
