#!/usr/bin/env bash
# Fencing beyond storage, in the lab, with real corosync, tgtd, QEMU and the lab's power
# switch as a fence agent (tests/lab/fence_lab, the fence-agents protocol):
#   1. a host whose only level is power, its VM without storage fencing: killed -> fenced
#      through fence_lab -> the VM recovered;
#   2. a host with one level of storage + power, partitioned: its key is preempted and the
#      host is powered off through fence_lab; its VM recovered;
#   3. (LAB_WATCHDOG) a host that lost quorum and cannot stop its VM in time stops petting
#      its emulated watchdog, which resets it; its VM (no storage fencing, no power level)
#      is recovered only after twice the watchdog timeout.
set -euo pipefail
. tests/it/lib.sh

guest=$top/tests/guest/hvguest.elf
fence_lab=$top/tests/lab/fence_lab
[ -x "$fence_lab" ] || fail "no $fence_lab"

export LAB_ID=${LAB_ID:-fe$$}
export LAB_WATCHDOG=4
lab_up 3 --luns 3
wait_online 3
mapfile -t luns < <("$lab" luns)
on() { local h=$1; shift; "$lab" exec "$h" -- "$@"; }
status() { on "${1:-n1}" hvctl status --json; }
vm_field() { jget "$(status "${3:-n1}")" "[v['$2'] for v in j['vms'] if v['name'] == '$1'][0]"; }
node_state() { jget "$(status "${2:-n1}")" "[n['state'] for n in j['nodes'] if n['name'] == '$1'][0]"; }
started_off() { [ "$(vm_field "$1" state)" = started ] && [ "$(vm_field "$1" node)" != "$2" ]; }

on n1 hvctl fence device add lab --agent "$fence_lab" --param "lab_id=$LAB_ID" >/dev/null ||
	fail "fence device add lab"
on n1 hvctl fence level add n3 1 lab >/dev/null || fail "fence level n3 1 lab"
on n1 hvctl fence level add n2 1 storage,lab >/dev/null || fail "fence level n2 1 storage,lab"

log "1. n3: power fencing only, its VM without storage fencing"
on n1 hvctl vm create p1 --vcpus 1 --memory 32M --disk "${luns[0]},bus=ide" --kernel "$guest" \
	--no-fence-storage --prefer n3 >/dev/null || fail "create p1"
on n1 hvctl vm start p1 >/dev/null || fail "start p1"
[ "$(vm_field p1 node)" = n3 ] || fail "p1 runs on $(vm_field p1 node), want n3"
"$lab" kill n3
wait_for 60 "p1 recovered off n3" started_off p1 n3
hist=$(on n1 hvctl fence history --json)
jget "$hist" '[f for f in j if f["node"] == "n3" and f["ok"]][-1]["detail"]' | grep -q "level 1 (lab): ok" ||
	fail "n3's fence did not go through the lab agent: $hist"
"$lab" start n3
wait_online 3

log "2. n2: storage + power in one level; partitioned"
on n1 hvctl vm create s1 --vcpus 1 --memory 32M --disk "${luns[1]},bus=ide" --kernel "$guest" \
	--prefer n2 >/dev/null || fail "create s1"
on n1 hvctl vm start s1 >/dev/null || fail "start s1"
[ "$(vm_field s1 node)" = n2 ] || fail "s1 runs on $(vm_field s1 node), want n2"
"$lab" partition n2
wait_for 60 "s1 recovered off n2" started_off s1 n2
detail=$(jget "$(on n1 hvctl fence history --json)" '[f for f in j if f["node"] == "n2" and f["ok"]][-1]["detail"]')
grep -q "level 1 (storage): ok" <<<"$detail" || fail "n2: no storage fence: $detail"
grep -q "level 1 (lab): ok" <<<"$detail" || fail "n2: not powered off: $detail"
wait_for 20 "n2 powered off by fence_lab" bash -c "! $lab status n2"
"$lab" heal n2
"$lab" start n2
wait_online 3

log "3. watchdog: n3 loses quorum and cannot release its VM's LUN in time"
on n1 hvctl fence level del n3 1 >/dev/null || fail "fence level del n3 1"
on n1 hvctl vm create w1 --vcpus 1 --memory 32M --disk "${luns[2]},bus=ide" --kernel "$guest" \
	--no-fence-storage --prefer n3 >/dev/null || fail "create w1"
on n1 hvctl vm start w1 >/dev/null || fail "start w1"
[ "$(vm_field w1 node)" = n3 ] || fail "w1 runs on $(vm_field w1 node), want n3"
wdlog=$("$lab" path n3)/log/watchdog.log
"$lab" partition n3
wait_for 60 "n3's watchdog reset it" grep -q "resetting the host" "$wdlog"
wait_for 60 "w1 recovered off n3 after the watchdog deadline" started_off w1 n3
detail=$(jget "$(on n1 hvctl fence history --json)" '[f for f in j if f["node"] == "n3" and f["ok"]][-1]["detail"]')
grep -q "watchdog: node left" <<<"$detail" || fail "n3 fenced without the watchdog deadline: $detail"
"$lab" heal n3
echo PASS
