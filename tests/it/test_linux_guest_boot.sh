#!/usr/bin/env bash
# The Linux test guest (tests/guest/linux/) with plain QEMU, no hvcluster:
#   1. write mode on an empty 64 MiB disk (virtio-blk-pci, -machine pc): the guest reaches
#      userspace, makes ext2, writes its token, powers off, QEMU exits; read-token.sh reads
#      the token back from the image;
#   2. read mode on the same disk (no token given): the guest prints the token it found;
#   3. read mode on an empty disk: the guest reports the error and still powers off;
#   4. idle mode: QMP system_powerdown (ACPI power button) powers the guest off.
# Run from the repository top. Exit 0 pass, 1 fail ("FAIL: ..."), 77 skip (no kernel).
# Env: QEMU, TIMEOUT (seconds per boot, default 90), MEM (MiB, default 128), KEEP=1 keeps
# the temp dir.
set -euo pipefail

QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT=${TIMEOUT:-90}
MEM=${MEM:-128}
G=tests/guest/linux
APPEND_BASE="console=ttyS0 quiet panic=-1"

tmp=
qemu_pid=
log=

cleanup()
{
	if [[ -n $qemu_pid ]]; then
		kill -KILL "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	if [[ -n $tmp ]]; then
		if [[ ${KEEP:-} = 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
	fi
}
trap cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

fail()
{
	echo "FAIL: $*"
	if [[ -n $log && -f $log ]]; then
		echo "--- last lines of $log:"
		tail -n 25 "$log"
	fi
	[[ -z $tmp || ! -s $tmp/qemu.err ]] || { echo "--- qemu stderr:"; tail -n 5 "$tmp/qemu.err"; }
	exit 1
}

say() { echo "[$(date +%T)] $*"; }

[[ -x $G/kernel-path.sh ]] || fail "run from the repository top ($G missing)"
rc=0
kernel=$($G/kernel-path.sh) || rc=$?
if [[ $rc = 77 ]]; then
	echo "SKIP: no kernel for the Linux test guest (make deps fetches it)"
	exit 77
fi
[[ $rc = 0 ]] || fail "kernel-path.sh failed ($rc)"
command -v "$QEMU" >/dev/null || fail "$QEMU not found"
command -v debugfs >/dev/null || [[ -x /sbin/debugfs ]] || fail "debugfs not found (e2fsprogs)"

t0=$SECONDS
rc=0
initrd=$($G/mkinitramfs.sh) || rc=$?
[[ $rc = 77 ]] && { echo "SKIP: no kernel"; exit 77; }
[[ $rc = 0 && -s $initrd ]] || fail "mkinitramfs.sh failed ($rc)"
say "kernel $kernel, initramfs $initrd ($((SECONDS - t0)) s)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_linux_guest.XXXXXX")
disk=$tmp/disk.img
truncate -s 64M "$disk"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# boot NAME DISK APPEND [QEMU ARGS...]: boot the guest in the background, console to
# $tmp/NAME.log; sets qemu_pid, log, boot_t0.
boot()
{
	local name=$1 img=$2 append=$3
	shift 3
	log=$tmp/$name.log
	: >"$log"
	boot_t0=$(now)
	"$QEMU" -machine pc -accel tcg -m "$MEM" -nodefaults -no-user-config -display none \
		-kernel "$kernel" -initrd "$initrd" -append "$APPEND_BASE $append" \
		-drive "file=$img,format=raw,if=none,id=d0,cache=none,werror=stop,rerror=stop" \
		-device virtio-blk-pci,drive=d0 \
		-serial "file:$log" -no-reboot "$@" </dev/null >>"$tmp/qemu.err" 2>&1 &
	qemu_pid=$!
}

# wait_console PATTERN WHAT: wait (bounded) until the console log has PATTERN (ERE).
wait_console()
{
	local deadline=$((SECONDS + TIMEOUT))
	until grep -Eq "$1" "$log"; do
		kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before: $2"
		[[ $SECONDS -lt $deadline ]] || fail "timed out after ${TIMEOUT}s waiting for: $2"
		sleep 0.1
	done
}

# wait_exit WHAT: wait (bounded) for QEMU to exit by itself, with status 0; strips CRs off the log.
wait_exit()
{
	local deadline=$((SECONDS + TIMEOUT)) rc=0
	while kill -0 "$qemu_pid" 2>/dev/null; do
		[[ $SECONDS -lt $deadline ]] || fail "QEMU still running ${TIMEOUT}s after: $1"
		sleep 0.1
	done
	wait "$qemu_pid" || rc=$?
	qemu_pid=
	sed -i 's/\r$//' "$log" # the serial console ends lines with CR LF
	[[ $rc = 0 ]] || fail "QEMU exited with status $rc ($1)"
}

# 1. write
token=hv-$$-$RANDOM-$(date +%s)
boot write "$disk" "hvlinux.mode=write hvlinux.token=$token"
wait_console '^hvlinux userspace uname=' "userspace (write boot)"
t_user=$(secs "$boot_t0" "$(now)")
wait_exit "write boot"
t_exit=$(secs "$boot_t0" "$(now)")
grep -q '^hvlinux boot' "$log" || fail "no 'hvlinux boot' marker"
grep -q '^hvlinux error' "$log" && fail "guest error in write mode"
grep -qx "hvlinux wrote token=$token" "$log" || fail "no 'hvlinux wrote token=$token' on the console"
grep -q '^hvlinux poweroff (done)' "$log" || fail "no clean poweroff"
say "write boot: userspace after ${t_user}s, QEMU exited after ${t_exit}s ($(grep -o 'uname=.*' "$log"))"
got=$($G/read-token.sh "$disk") || fail "read-token.sh found no token on the disk"
[[ $got = "$token" ]] || fail "read-token.sh: got '$got', want '$token'"
say "ok: read-token.sh reads $token"

# 2. read, no token given: it can only come from the disk
boot read "$disk" "hvlinux.mode=read"
wait_exit "read boot"
t_exit=$(secs "$boot_t0" "$(now)")
grep -q '^hvlinux error' "$log" && fail "guest error in read mode"
grep -qx "hvlinux read token=$token" "$log" || fail "read boot did not print 'hvlinux read token=$token'"
say "ok: read boot reads $token (${t_exit}s)"

# 3. read mode on an empty disk: error reported, and the guest still goes away
truncate -s 64M "$tmp/empty.img"
boot empty "$tmp/empty.img" "hvlinux.mode=read"
wait_exit "read boot on an empty disk"
grep -q '^hvlinux error: mount' "$log" || fail "no mount error for an empty disk"
grep -q '^hvlinux read token' "$log" && fail "a token read from an empty disk"
say "ok: empty disk: $(grep -m1 '^hvlinux error' "$log")"

# 4. idle, then ACPI power button through QMP
qmp=$tmp/qmp.sock
boot idle "$disk" "hvlinux.mode=idle" -qmp "unix:$qmp,server=on,wait=off"
wait_console '^hvlinux idle' "idle"
python3 - "$qmp" <<'EOF' || fail "QMP system_powerdown failed"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()  # greeting
for cmd in ("qmp_capabilities", "system_powerdown"):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r:
            break
        if "error" in r:
            sys.exit("QMP %s: %s" % (cmd, r["error"]))
EOF
wait_exit "system_powerdown in idle mode"
grep -q '^hvlinux poweroff (power button)' "$log" || fail "no power-button poweroff"
say "ok: idle guest powers off on system_powerdown"

say "PASS ($((SECONDS - t0)) s)"
exit 0
