#!/usr/bin/env bash
# Integration test of the test guest and hvgrec, with nothing but QEMU (no lab):
#   1. boot on an empty disk: commits appear, are on disk, under the printed boot id;
#   2. reboot on the same disk: new boot id, the sequence carries on, hvgrec sees two boots;
#   3. flip one byte of one record: hvgrec reports it and fails;
#   4. boot without a disk: io-error, but the heartbeat goes on.
# Run from the repository top after building tests/guest/hvguest.elf and tests/guest/hvgrec.
set -euo pipefail

GUEST=${GUEST:-tests/guest/hvguest.elf}
HVGREC=${HVGREC:-tests/guest/hvgrec}
QEMU=${QEMU:-qemu-system-x86_64}
PYTHON=${PYTHON:-python3}
TIMEOUT=${TIMEOUT:-60} # seconds per wait; TCG on a busy 2-core box is slow to boot
COMMITS=10

tmp=
qemu_pid=

cleanup()
{
	if [[ -n $qemu_pid ]]; then
		kill -KILL "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	[[ -z $tmp ]] || rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

fail()
{
	echo "FAIL: $*" >&2
	if [[ -n ${log:-} && -f ${log:-} ]]; then
		echo "--- last lines of $log:" >&2
		tail -n 15 "$log" >&2
	fi
	exit 1
}

for f in "$GUEST" "$HVGREC"; do
	[[ -e $f ]] || fail "$f not found (build it first, and run from the repository top)"
done
command -v "$QEMU" >/dev/null || fail "$QEMU not found"
command -v "$PYTHON" >/dev/null || fail "$PYTHON not found (needed to read hvgrec's JSON)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_guest.XXXXXX")
disk=$tmp/disk.img
truncate -s 1M "$disk"

# start_guest LOG [QEMU ARGS...]: boot the guest in the background, console to LOG.
start_guest()
{
	log=$1
	shift
	: >"$log"
	"$QEMU" -accel tcg -machine pc -m 32 -nodefaults -no-user-config -display none \
		-no-reboot -serial "file:$log" -kernel "$GUEST" -append interval_ms=50 "$@" \
		</dev/null >>"$tmp/qemu.err" 2>&1 &
	qemu_pid=$!
}

start_guest_on_disk()
{
	start_guest "$1" -drive "file=$disk,format=raw,if=ide,index=0,cache=writeback"
}

stop_guest()
{
	kill -KILL "$qemu_pid" 2>/dev/null || true
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=
}

# wait_for WHAT PATTERN COUNT: wait until LOG has COUNT lines matching PATTERN (grep -E).
wait_for()
{
	local what=$1 pattern=$2 count=$3 deadline=$((SECONDS + TIMEOUT))

	while (($(grep -cE "$pattern" "$log" || true) < count)); do
		if ! kill -0 "$qemu_pid" 2>/dev/null; then
			cat "$tmp/qemu.err" >&2
			fail "QEMU exited while waiting for $what"
		fi
		((SECONDS < deadline)) || fail "no $what within ${TIMEOUT}s"
		sleep 0.2
	done
}

boot_id_of()
{
	sed -nE 's/^hvguest boot id=([0-9a-f]{16})$/\1/p' "$1" | head -n 1
}

resume_seq_of()
{
	sed -nE 's/^hvguest resume seq=([0-9]+)$/\1/p' "$1" | head -n 1
}

# Seqs of the commit lines of LOG, one per line; only complete lines (the guest may be killed
# mid-line).
commit_seqs_of()
{
	sed -nE 's/^commit seq=([0-9]+) boot=[0-9a-f]{16} counter=[0-9]+$/\1/p' "$1"
}

# json_get JSON EXPR: evaluate a Python expression over the parsed JSON, bound to j.
json_get()
{
	"$PYTHON" -c '
import json, sys
j = json.loads(sys.argv[1])
v = eval(sys.argv[2])
print(json.dumps(v) if v is None or isinstance(v, (bool, list, dict)) else v)
' "$1" "$2"
}

# check_disk: run hvgrec check --json; sets $json and $check_rc.
check_disk()
{
	check_rc=0
	json=$("$HVGREC" check "$disk" --json) || check_rc=$?
	[[ -n $json ]] || fail "hvgrec check printed nothing (exit $check_rc)"
}

# --- 1. first boot on an empty disk
start_guest_on_disk "$tmp/boot1.log"
wait_for "commit lines (boot 1)" '^commit seq=' "$COMMITS"
stop_guest

id1=$(boot_id_of "$log")
[[ -n $id1 ]] || fail "boot 1 printed no 'hvguest boot id=<16 hex>' line"
[[ $(resume_seq_of "$log") == 0 ]] || fail "boot 1 on an empty disk did not resume at seq 0"
if grep -q 'io-error' "$log"; then
	fail "boot 1 reported an io-error"
fi
# Not grep -q: an early exit would SIGPIPE the first grep and pipefail would hide the match.
if grep -E '^commit ' "$log" | grep -v " boot=$id1 " >/dev/null; then
	fail "boot 1 commit lines carry another boot id"
fi

check_disk
((check_rc == 0)) || fail "hvgrec check after boot 1 exited $check_rc: $json"
[[ $(json_get "$json" 'len(j["boots"])') == 1 ]] || fail "after boot 1 expected 1 boot: $json"
[[ $(json_get "$json" 'j["boots"][0]["id"]') == "$id1" ]] ||
	fail "boot id on disk differs from the printed $id1: $json"
[[ $(json_get "$json" 'j["corrupt"]') == 0 ]] || fail "corrupt sectors after boot 1: $json"
max1=$(json_get "$json" 'j["max_seq"]')
valid1=$(json_get "$json" 'j["valid"]')
((valid1 >= COMMITS)) || fail "only $valid1 valid records after $COMMITS commits"

# Every commit the guest printed must be on disk, under its boot id, in its slot.
"$HVGREC" dump "$disk" >"$tmp/dump1"
for seq in $(commit_seqs_of "$log"); do
	grep -qE "^lba=$((1 + seq % 1024)) seq=$seq boot=$id1 " "$tmp/dump1" ||
		fail "printed commit seq=$seq of boot $id1 is not on disk"
done
last1=$(commit_seqs_of "$log" | tail -n 1)
# The guest may be killed between flush and print, so disk may be one ahead of the console.
((max1 == last1 || max1 == last1 + 1)) ||
	fail "max seq on disk $max1 does not follow the last printed commit $last1"
echo "boot 1: id $id1, seqs 0..$max1 on disk"

# --- 2. second boot on the same disk continues the sequence
start_guest_on_disk "$tmp/boot2.log"
wait_for "resume line (boot 2)" '^hvguest resume seq=' 1
wait_for "commit lines (boot 2)" '^commit seq=' 3
stop_guest

id2=$(boot_id_of "$log")
[[ -n $id2 ]] || fail "boot 2 printed no boot id"
[[ $id2 != "$id1" ]] || fail "boot 2 has the same boot id as boot 1 ($id1)"
resume2=$(resume_seq_of "$log")
((resume2 == max1 + 1)) || fail "boot 2 resumed at seq $resume2, expected $((max1 + 1))"
first2=$(commit_seqs_of "$log" | head -n 1)
((first2 == resume2)) || fail "boot 2's first commit is seq $first2, not its resume seq $resume2"

check_disk
((check_rc == 0)) || fail "hvgrec check after boot 2 exited $check_rc: $json"
[[ $(json_get "$json" 'j["contiguous"]') == true ]] || fail "seqs not contiguous: $json"
[[ $(json_get "$json" '[b["id"] for b in j["boots"]]') == "[\"$id1\", \"$id2\"]" ]] ||
	fail "expected boots $id1 then $id2 on disk: $json"
[[ $(json_get "$json" 'j["boots"][0]["last_seq"]') == "$max1" ]] ||
	fail "boot 1's records changed during boot 2: $json"
[[ $(json_get "$json" 'j["boots"][1]["first_seq"]') == "$resume2" ]] ||
	fail "boot 2's records do not start at $resume2: $json"
max2=$(json_get "$json" 'j["max_seq"]')
echo "boot 2: id $id2, resumed at $resume2, seqs up to $max2 on disk"

# --- 3. one flipped byte (in the seq field of boot 1's record 2) is caught
lba=$((1 + 2 % 1024))
printf '\x5a' | dd of="$disk" bs=1 seek=$((lba * 512 + 16)) conv=notrunc status=none
check_disk
((check_rc == 1)) || fail "hvgrec check exited $check_rc on a corrupted record, expected 1"
[[ $(json_get "$json" 'j["corrupt"]') == 1 ]] || fail "expected exactly 1 corrupt sector: $json"
[[ $(json_get "$json" 'j["ok"]') == false ]] || fail "corrupted ring reported ok: $json"
echo "corruption at lba $lba detected"

# --- 4. no disk: io-error, and the guest keeps its heartbeat
start_guest "$tmp/nodisk.log"
wait_for "io-error line (no disk)" '^hvguest io-error$' 1
wait_for "heartbeat (no disk)" '^hvguest alive counter=[0-9]+$' 1
stop_guest
if grep -q '^commit ' "$log"; then
	fail "guest without a disk printed a commit"
fi
echo "no disk: io-error and heartbeat"

echo "PASS: test_guest"
