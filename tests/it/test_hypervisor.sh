#!/usr/bin/env bash
# Integration test of the QEMU driver (hypervisor/) through tests/it/hv-run, with nothing but
# QEMU (no lab). Boots the test guest on a raw IDE disk under uid 64001 and checks:
#   1. commits on the console; QEMU runs as 64001 under seccomp, no_new_privs, no groups;
#      the VM dir is 0700 and the QMP socket its uid's alone: uid 64002 cannot connect;
#   2. pause stops the guest's heartbeat, resume brings it back; a QMP error reaches the
#      callback with class and desc;
#   3. SIGKILL from outside: the driver reports an unexpected exit, with the signal and
#      QEMU's stderr tail;
#   4. a second boot appends to the same console log; shutdown of a guest without ACPI ends
#      in SIGKILL after the timeout, reported as an expected exit.
# Run from the repository top after `make` (tests/guest/hvguest.elf, tests/it/hv-run).
# Exit 0 pass, 1 "FAIL: <what>", 77 skip.
set -euo pipefail

GUEST=${GUEST:-tests/guest/hvguest.elf}
HVRUN=${HVRUN:-tests/it/hv-run}
QEMU=${QEMU:-qemu-system-x86_64}
# run as other uids: the system's python, not one from root's home (pyenv shims)
PYTHON=${PYTHON:-/usr/bin/python3}
VM_UID=64001
OTHER_UID=64002

tmp=
run_pid=
qemu_pid=

cleanup()
{
	# hv-run kills its QEMU when told to stop; the direct kill is the belt to those braces
	[[ -z $run_pid ]] || kill -TERM "$run_pid" 2>/dev/null || true
	[[ -z $qemu_pid ]] || kill -KILL "$qemu_pid" 2>/dev/null || true
	[[ -z $run_pid ]] || wait "$run_pid" 2>/dev/null || true
	[[ -z $tmp ]] || rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

fail()
{
	echo "FAIL: $*"
	if [[ -n ${out:-} && -f ${out:-} ]]; then
		echo "--- last lines of hv-run's output ($out):"
		tail -n 30 "$out"
	fi
	exit 1
}

skip()
{
	echo "SKIP: $*"
	exit 77
}

((EUID == 0)) || skip "needs root (QEMU is started under uid $VM_UID)"
command -v "$QEMU" >/dev/null || skip "$QEMU not installed"
[[ -x $PYTHON ]] || PYTHON=$(command -v python3) || skip "python3 not installed"
command -v setpriv >/dev/null || skip "setpriv not installed"
[[ -x $HVRUN ]] || fail "$HVRUN not found (run make, from the repository top)"
[[ -e $GUEST ]] || fail "$GUEST not found (run make, from the repository top)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_hypervisor.XXXXXX")
chmod 0711 "$tmp" # the VM's uid passes through to its own dir, lists nothing
vmdir=$tmp/vm
mkdir "$vmdir"
chown "$VM_UID:$VM_UID" "$vmdir"
chmod 0700 "$vmdir"
# the guest kernel where the VM's uid can read it, wherever the repository lives
install -m 0644 "$GUEST" "$tmp/hvguest.elf"
disk=$tmp/disk.img
truncate -s 1M "$disk"
chown "$VM_UID:$VM_UID" "$disk"
chmod 0600 "$disk"

# start_run NAME ACTION...: hv-run in the background, its output in $out.
start_run()
{
	out=$tmp/$1.out
	shift
	"$HVRUN" --dir "$vmdir" --uid "$VM_UID" --name hvtest --memory 32 \
		--kernel "$tmp/hvguest.elf" --append interval_ms=50 --disk-file "$disk,ide" \
		--nic 52:54:00:00:00:01,e1000 -- "$@" >"$out" 2>&1 &
	run_pid=$!
}

# wait_out PATTERN SECS: until hv-run's output has a line matching PATTERN (grep -E).
wait_out()
{
	local deadline=$((SECONDS + $2))

	until grep -qE "$1" "$out"; do
		kill -0 "$run_pid" 2>/dev/null || grep -qE "$1" "$out" ||
			fail "hv-run ended before printing '$1'"
		((SECONDS < deadline)) || fail "no '$1' from hv-run within $2 s"
		sleep 0.2
	done
}

# end_run: wait for hv-run; it must pass.
end_run()
{
	local rc=0

	wait "$run_pid" || rc=$?
	run_pid=
	((rc == 0)) || fail "hv-run exited $rc"
	grep -q '^PASS: ' "$out" || fail "hv-run did not pass"
}

# connect_as UID: try to connect to the QMP socket as UID; prints denied, connected or error.
connect_as()
{
	setpriv --reuid "$1" --regid "$1" --clear-groups "$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("denied")
except OSError as e:
    print("error", e)
else:
    print("connected")
' "$vmdir/qmp.sock" 2>&1 || true
}

# --- run 1: boot, identity, sandbox, permissions, pause/resume, QMP error, outside kill
start_run run1 wait-ready "wait-console commit 60" pid "wait-file $tmp/go1 60" \
	pause "expect-state paused user" "quiet-console alive 2.5" resume "expect-state running" \
	"wait-console alive 10" "wait-console commit 10" qmp-bad "expect-exit unexpected signal=9 30"
wait_out '^pid [0-9]+$' 60
qemu_pid=$(sed -nE 's/^pid ([0-9]+)$/\1/p' "$out")
echo "QEMU pid $qemu_pid"

grep -qE '^commit seq=[0-9]+ ' "$vmdir/console.log" || fail "no commit line in console.log"
[[ $(ps -o uid= -p "$qemu_pid" | tr -d ' ') == "$VM_UID" ]] ||
	fail "QEMU runs as uid $(ps -o uid= -p "$qemu_pid"), not $VM_UID"
status=/proc/$qemu_pid/status
grep -qE "^Uid:\s+$VM_UID\s+$VM_UID\s+$VM_UID\s+$VM_UID$" "$status" ||
	fail "QEMU uids: $(grep ^Uid: "$status")"
grep -qE "^Gid:\s+$VM_UID\s+$VM_UID\s+$VM_UID\s+$VM_UID$" "$status" ||
	fail "QEMU gids: $(grep ^Gid: "$status")"
grep -qE '^Groups:\s*$' "$status" || fail "QEMU has supplementary groups: $(grep ^Groups: "$status")"
grep -qE '^Seccomp:\s+2$' "$status" || fail "QEMU not in seccomp filter mode: $(grep ^Seccomp: "$status")"
grep -qE '^NoNewPrivs:\s+1$' "$status" || fail "QEMU without no_new_privs"
echo "QEMU: uid/gid $VM_UID, no groups, Seccomp 2, NoNewPrivs 1"

[[ $(stat -c '%u %a' "$vmdir") == "$VM_UID 700" ]] || fail "VM dir is $(stat -c '%u %a' "$vmdir")"
[[ -S $vmdir/qmp.sock ]] || fail "no QMP socket in $vmdir"
sock=$(stat -c '%u %a' "$vmdir/qmp.sock")
# QEMU binds it under umask 0177: 0600, nothing for others
[[ $sock == "$VM_UID 600" ]] || fail "QMP socket is uid/mode $sock"
for f in console.log qemu.stderr; do
	[[ $(stat -c '%u %a' "$vmdir/$f") == "$VM_UID 600" ]] ||
		fail "$f is $(stat -c '%u %a' "$vmdir/$f")"
done
got=$(connect_as "$OTHER_UID")
[[ $got == denied ]] || fail "uid $OTHER_UID connecting to the QMP socket: $got"
got=$(connect_as "$VM_UID")
[[ $got == connected ]] || fail "control: uid $VM_UID connecting to the QMP socket: $got"
echo "QMP socket $sock in a 0700 dir: uid $OTHER_UID denied, uid $VM_UID (control) connects"

touch "$tmp/go1"
wait_out '^ok: quiet-console alive' 30
echo "paused: no heartbeat for 2.5 s"
wait_out '^ok: wait-console commit 10' 30
echo "resumed: heartbeat and commits again"
wait_out '^qmp-error CommandNotFound: The command hv-run-no-such-command has not been found$' 10
wait_out '^waiting for QEMU' 10
kill -KILL "$qemu_pid"
end_run
qemu_pid=
grep -q '^exited unexpected signal=9$' "$out" || fail "no unexpected exit by signal 9 reported"
grep -qE "error .*vm hvtest: QEMU [0-9]+ killed by signal 9 .*unexpectedly; stderr: .*nic0 has no peer" \
	"$out" || fail "the unexpected exit was not logged at error with QEMU's stderr tail"
grep -qE '^  \| .*warning: nic nic0 has no peer' "$out" || fail "stderr tail not passed to the callback"
if grep -qE '^  \| hvcluster: ' "$out"; then
	fail "stderr tail includes the driver's own header"
fi
echo "outside SIGKILL: unexpected exit, signal 9, stderr tail reported"

# --- run 2: same dir, console log appended; shutdown without ACPI ends in SIGKILL, expected
start_run run2 wait-ready "wait-console commit 60" pid "shutdown 3000" \
	"expect-exit expected signal=9 forced 30"
wait_out '^pid [0-9]+$' 60
qemu_pid=$(sed -nE 's/^pid ([0-9]+)$/\1/p' "$out")
end_run
grep -q '^event POWERDOWN' "$out" || fail "no POWERDOWN event after system_powerdown"
grep -q '^shutdown-done forced=1$' "$out" || fail "shutdown not reported as forced"
grep -qE 'warning .*vm hvtest: no power-off within 3000 ms; killing QEMU' "$out" ||
	fail "the forced kill was not logged"
if grep -qE 'error .*unexpectedly' "$out"; then
	fail "the shutdown's kill was logged as unexpected"
fi
! kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU $qemu_pid still running after its exit was reported"
qemu_pid=
# not anchored: a QEMU killed mid-line (run 1's SIGKILL) leaves that line without its
# newline, and the next boot's line then starts in the middle of it
boots=$(grep -o 'hvguest boot id=' "$vmdir/console.log" | wc -l || true)
((boots == 2)) || fail "console.log holds $boots boots, expected 2 (appended across restarts)"
echo "shutdown: SIGKILL after 3 s, expected exit; console.log kept both boots"

echo "PASS: test_hypervisor"
