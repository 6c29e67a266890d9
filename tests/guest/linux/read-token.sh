#!/bin/sh
# Print the token the Linux test guest wrote (hvlinux.mode=write) on a disk: a raw image
# file or a block device holding the ext2 file system the guest made. Reads /hvlinux.txt
# with debugfs (e2fsprogs), so nothing is mounted. Exit 1 when there is no token.
#   read-token.sh DISK            the token
#   read-token.sh --all DISK      the whole file (token=, uname=, date=)
set -eu

all=0
[ "${1:-}" = --all ] && { all=1; shift; }
[ $# -eq 1 ] || { echo "usage: read-token.sh [--all] DISK" >&2; exit 2; }
disk=$1
[ -r "$disk" ] || { echo "read-token.sh: cannot read $disk" >&2; exit 1; }
debugfs=$(command -v debugfs || echo /sbin/debugfs)
[ -x "$debugfs" ] || { echo "read-token.sh: debugfs not found (e2fsprogs)" >&2; exit 1; }

txt=$("$debugfs" -R 'cat /hvlinux.txt' "$disk" 2>/dev/null) || true
if [ $all = 1 ]; then
	[ -n "$txt" ] || { echo "read-token.sh: no /hvlinux.txt on $disk" >&2; exit 1; }
	printf '%s\n' "$txt"
	exit 0
fi
token=$(printf '%s\n' "$txt" | sed -n 's/^token=//p' | head -n 1)
[ -n "$token" ] || { echo "read-token.sh: no token on $disk" >&2; exit 1; }
printf '%s\n' "$token"
