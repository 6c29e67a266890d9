#!/bin/sh
# Print the path of the test guest's kernel image (see common.sh for where it is looked for).
#   kernel-path.sh             the vmlinuz path
#   kernel-path.sh --version   the kernel version (uname -r in the guest)
#   kernel-path.sh --modules   the directory holding its modules (kernel/, modules.builtin)
# Exits 77 (the tests' "skip") with a message on stderr when there is no kernel.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/guest/linux/common.sh
. "$here/common.sh"

if ! hvlinux_find_kernel; then
	hvlinux_no_kernel_msg
	exit 77
fi
case ${1:-} in
"") echo "$hvl_kernel" ;;
--version) echo "$hvl_kver" ;;
--modules) echo "$hvl_modules" ;;
*) hvlinux_die "usage: kernel-path.sh [--version|--modules]" ;;
esac
