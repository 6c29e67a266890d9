#!/usr/bin/env bash
# A real Linux guest through hvcluster: Debian's kernel with the busybox initramfs of
# tests/guest/linux, started by hvnoded (its own uid, sandbox, nbdkit disk server, the
# LUN reserved by the node), writes a token on its iSCSI LUN and powers off; the test
# reads the token back from the LUN's backing file after the VM stopped, and checks that
# the node left no registration behind.
set -euo pipefail
. tests/it/lib.sh

kernel=$(tests/guest/linux/kernel-path.sh) || { echo "no Linux kernel for the test guest (make deps)"; exit 77; }
initrd=$(tests/guest/linux/mkinitramfs.sh) || fail "cannot build the initramfs"
lun_tool=$top/tests/it/lun-tool

export LAB_ID=${LAB_ID:-lx$$}
lab_up 1 --luns 1
wait_online 1

url=$("$lab" luns | head -n 1)
img=$("$lab" path san)/lun1.img
on() { local h=$1; shift; "$lab" exec "$h" -- "$@"; }
token="hv-linux-$$-$RANDOM"

log "create a Linux VM on $url"
on n1 hvctl vm create lx --vcpus 1 --memory 128M --disk "$url" --kernel "$kernel" \
	--initrd "$initrd" --append "console=ttyS0 quiet panic=-1 hvlinux.mode=write hvlinux.token=$token" \
	--owner ops --contact ops@example.org >/dev/null || fail "vm create lx"
on n1 hvctl vm start lx >/dev/null || fail "vm start lx"
pid=$(jget "$(on n1 hvctl vm show lx --json)" 'j.get("pid", 0)')
[ "$pid" -gt 0 ] || fail "no QEMU pid for lx"
uid=$(on n1 awk '/^Uid:/ {print $2}' /proc/$pid/status)
[ "$uid" -ne 0 ] || fail "the Linux guest's QEMU runs as root"

wait_for 120 "the guest wrote its token and powered off" bash -c \
	"[ \"\$($lab exec n1 -- hvctl vm show lx --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = stopped ]"
console=$(on n1 hvctl vm console-log lx --lines 400)
grep -q '^hvlinux userspace' <<<"$console" || fail "the guest never reached userspace: $(tail -n 20 <<<"$console")"
grep -q "^hvlinux wrote token=$token" <<<"$console" || fail "the guest did not write its token: $(tail -n 20 <<<"$console")"

log "read the token back from the LUN"
got=$(tests/guest/linux/read-token.sh "$img") || fail "no token on $img"
[ "$got" = "$token" ] || fail "token on the LUN is '$got', want '$token'"
keys=$(on n1 "$lun_tool" keys "$url" --json)
[ "$(jget "$keys" 'len(j["keys"])')" = 0 ] || fail "registrations left after the VM stopped: $keys"
last=$(jget "$(on n1 hvctl vm show lx --json)" 'j.get("last_error", "")')
[ -z "$last" ] || fail "a clean power-off left an error: $last"
echo PASS
