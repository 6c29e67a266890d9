#!/bin/bash
# Integration test of the multi-host lab (tests/lab/lab): up 3, membership and quorum seen
# by every host's corosync, iSCSI from a host to the san, power-off/on, partition/heal,
# and a down that leaves nothing behind. Run from the repo top as root.
# Exit 0 pass, 1 fail (a line "FAIL: <what>" says what).
#
# HVNODED: the hvnoded to start per host; default ./hvnoded if built, else a stub that
# sleeps (this test checks the lab, not hvnoded: it only checks that it is running).

set -uo pipefail

LAB=$PWD/tests/lab/lab
[ -x "$LAB" ] || { echo "FAIL: $LAB not found (run from the repo top)"; exit 1; }

LAB_ID=t$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
export LAB_ID
WORK=$(mktemp -d /tmp/test_lab.XXXXXX)

if [ -z "${HVNODED:-}" ]; then
	if [ -x ./hvnoded ]; then
		HVNODED=$PWD/hvnoded
	else
		HVNODED=$WORK/hvnoded-stub
		printf '#!/bin/sh\nexec sleep infinity\n' >"$HVNODED"
		chmod +x "$HVNODED"
	fi
fi
export HVNODED

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	"$LAB" down >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	if [ -d "/tmp/hvlab-$LAB_ID" ]; then "$LAB" status 2>&1 | sed 's/^/  /'; fi
	exit 1
}
step() { echo "--- $*"; }

# "members quorate(Yes|No)" seen by HOST's corosync, from inside HOST
quorum() {
	"$LAB" exec "$1" -- corosync-quorumtool -s 2>/dev/null |
		awk -F': *' '/^Nodes:/ { m = $2 } /^Quorate:/ { q = $2 } END { print m + 0, q }'
}

# expect_quorum TIMEOUT HOST "M Yes|No": polls until HOST's corosync sees that
expect_quorum() {
	local timeout=$1 h=$2 want=$3 got end=$((SECONDS + $1))
	while :; do
		got=$(quorum "$h")
		[ "$got" = "$want" ] && return 0
		((SECONDS < end)) || fail "$h: corosync shows '$got' (members quorate), want '$want' after ${timeout}s"
		sleep 0.5
	done
}

# PID is a live process (a zombie waiting for its reaper is dead)
alive() {
	local st
	st=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# pids of processes whose netns is that of lab host $1
host_pids() {
	local ino
	ino=$(stat -L -c %i "/run/netns/hvl-$LAB_ID-$1" 2>/dev/null) || return 0
	stat -L -c '%i %n' /proc/[0-9]*/ns/net 2>/dev/null |
		awk -v i="$ino" '$1 == i { split($2, a, "/"); print a[3] }'
}

# pid COLUMN of HOST in `lab status --json`
status_pid() {
	"$LAB" status --json | tr '{' '\n' | grep "^\"name\":\"$1\"" -A1 | tr ',' '\n' |
		sed -n "s/^\"$2\":\([0-9]*\).*/\1/p" | head -1
}

step "lab up 3 (id $LAB_ID, hvnoded $HVNODED)"
"$LAB" up 3 >"$WORK/up.out" 2>&1 || { cat "$WORK/up.out"; fail "lab up 3"; }
grep -q "$LAB_ID" "$WORK/up.out" || fail "lab up does not print the lab id $LAB_ID"
DIR=$("$LAB" path)
[ "$DIR" = "/tmp/hvlab-$LAB_ID" ] || fail "lab path prints '$DIR'"

step "every host sees 3 members, quorate"
for h in n1 n2 n3; do
	expect_quorum 5 "$h" "3 Yes"
	"$LAB" status "$h" >/dev/null || fail "lab status $h: not 0 while up"
	p=$(status_pid "$h" hvnoded)
	{ [ -n "$p" ] && alive "$p"; } || fail "$h: hvnoded not running (see $DIR/$h/log)"
done

step "nothing of the lab in the machine's own netns"
ip -o addr | grep '10\.77\.0\.' >/dev/null && fail "a lab address is in the root netns"
ip -o link | grep "hvl-$LAB_ID\|@if.*master br0" >/dev/null && fail "a lab link is in the root netns"

step "luns, iSCSI from n1 to the san"
mapfile -t luns < <("$LAB" luns)
[ ${#luns[@]} -eq 4 ] || fail "lab luns printed ${#luns[@]} URLs, want 4"
for u in "${luns[@]}"; do
	[[ $u =~ ^iscsi://10\.77\.0\.2:3260/iqn\.2026-11\.lab\.hvcluster:$LAB_ID/[1-4]$ ]] ||
		fail "bad LUN URL '$u'"
done
"$LAB" exec n1 -- iscsi-inq "${luns[0]}" >"$WORK/inq.out" 2>&1 ||
	{ cat "$WORK/inq.out"; fail "iscsi-inq ${luns[0]} from n1"; }
grep -q DIRECT_ACCESS "$WORK/inq.out" || fail "iscsi-inq from n1 did not see a disk"
iscsi-inq "${luns[0]}" >/dev/null 2>&1 && fail "the san is reachable from the root netns"

step "kill n3: n1 sees 2 members, quorate; nothing of n3 left"
n3_pids=$(status_pid n3 init; status_pid n3 corosync; status_pid n3 hvnoded)
"$LAB" exec n3 -- sh -c 'setsid sleep 1000 </dev/null >/dev/null 2>&1 &'
"$LAB" kill n3 >/dev/null || fail "lab kill n3"
for p in $n3_pids; do alive "$p" && fail "n3 pid $p still alive after kill"; done
[ -z "$(host_pids n3)" ] || fail "n3 processes left after kill: $(host_pids n3)"
"$LAB" status n3 >/dev/null
[ $? -eq 1 ] || fail "lab status n3: not 1 while down"
expect_quorum 15 n1 "2 Yes"
expect_quorum 5 n2 "2 Yes"

step "start n3: 3 members again"
"$LAB" start n3 >/dev/null || fail "lab start n3"
for h in n1 n2 n3; do expect_quorum 20 "$h" "3 Yes"; done

step "partition n2: n2 not quorate, n1 quorate with 2"
"$LAB" partition n2 >/dev/null || fail "lab partition n2"
expect_quorum 15 n2 "1 No"
expect_quorum 15 n1 "2 Yes"
[ "$("$LAB" status n2)" = "n2 partitioned" ] || fail "lab status n2 does not say partitioned"
timeout 10 "$LAB" exec n2 -- iscsi-inq "${luns[0]}" >/dev/null 2>&1 &&
	fail "n2 reaches the san while partitioned"

step "heal n2: 3 members again"
"$LAB" heal n2 >/dev/null || fail "lab heal n2"
for h in n1 n2 n3; do expect_quorum 20 "$h" "3 Yes"; done

step "lab down leaves nothing"
all_pids=$(for h in n1 n2 n3 san; do host_pids "$h"; done)
[ -n "$all_pids" ] || fail "no process found in the lab's netns before down"
"$LAB" down >/dev/null || fail "lab down"
ip netns list | grep "hvl-$LAB_ID-" >/dev/null && fail "netns of lab $LAB_ID left: $(ip netns list | grep "hvl-$LAB_ID-")"
for p in $all_pids; do
	alive "$p" && fail "process $p of the lab still alive: $(tr '\0' ' ' </proc/"$p"/cmdline)"
done
pgrep -f "hvlab-$LAB_ID|lab __init $LAB_ID" >/dev/null &&
	fail "a process naming lab $LAB_ID is still alive"
[ -e "$DIR" ] && fail "lab dir $DIR left"
findmnt -rn -o TARGET | grep "hvl-$LAB_ID\|hvlab-$LAB_ID" >/dev/null && fail "a mount of the lab left"
[ -e "/sys/fs/cgroup/unified/hvlab/$LAB_ID" ] && fail "cgroup of the lab left"
"$LAB" down >/dev/null || fail "second lab down (idempotent) failed"

echo "PASS: test_lab"
exit 0
