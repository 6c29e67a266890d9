#!/usr/bin/env bash
# Planned maintenance in a 3-host lab, real everything (corosync, tgtd, QEMU, nbdkit, ZeroMQ):
#   1. n1 runs d1 (high), d2 (medium), d3 (low) and d5 (allowed on n1 only); a hard
#      anti-affinity rule keeps d1 off n2 (v4 runs there). node drain n1 --wait: d1 and d2
#      move live (same boot id, commits go on), d3 quick, d1 lands on n3 (the rule holds);
#      d5 cannot go anywhere: reported with the reason, still running on n1; exit 1.
#      node impact n1 says the same before. A new VM is not placed on n1.
#   2. drain --force: d5 stops; n1 shows maintenance, runs no QEMU.
#   3. node resume n1: d1, d2 (failback immediate) come back live, d3 (none) stays,
#      d5 (still wanted) starts on n1 again.
#   4. SIGTERM hvnoded on n1 (shutdown_policy migrate): d1 and d2 move off live before it
#      stops; it leaves running nothing: offline, not fenced; hvnoded back on n1: its
#      maintenance ends by itself and they fail back.
#   5. shutdown_policy freeze on n1, SIGTERM: d1 and d2 stop and stay n1's (not recovered
#      elsewhere while it is away); hvnoded back: they start on n1 again.
set -euo pipefail
. tests/it/lib.sh

guest=$top/tests/guest/hvguest.elf

export LAB_ID=${LAB_ID:-dr$$}
lab_up 3 --luns 6
wait_online 3

mapfile -t luns < <("$lab" luns)
on() { local h=$1; shift; "$lab" exec "$h" -- "$@"; }
vmj() { on n2 hvctl vm show "$1" --json; }
vm_node() { jget "$(vmj "$1")" 'j["assigned_node"]'; }
vm_state() { jget "$(vmj "$1")" 'j["ha_state"]'; }
last_mig() { jget "$(vmj "$1")" "j.get('last_migration', {}).get('$2')"; }
console() { cat "$("$lab" path "$1")/run/hvcluster/vms/$2/console.log" 2>/dev/null || true; }
boot_of() { console "$1" "$2" | grep -a '^commit seq=' | tail -n 1 | sed 's/.* boot=\([0-9a-f]*\).*/\1/'; }
seq_of() { console "$1" "$2" | grep -a '^commit seq=' | tail -n 1 | sed 's/^commit seq=\([0-9]*\).*/\1/'; }
qemus() { on "$1" pgrep -c -f qemu-system || true; }
node_json() { on n2 hvctl node list --json | python3 -c "import json,sys; print(json.dumps([n for n in json.load(sys.stdin) if n['name'] == '$1'][0]))"; }
on_node_running() { [ "$(vm_node "$1")" = "$2" ] && [ "$(vm_state "$1")" = started ]; }
# VM $1 now commits on host $2 with boot id $3 beyond seq $4 (it went on, no reboot)
goes_on() {
	local s
	s=$(seq_of "$2" "$1")
	[ -n "$s" ] && [ "$(boot_of "$2" "$1")" = "$3" ] && [ "$s" -gt "$4" ]
}

mk() { # NAME LUN PRIORITY EXTRA...
	local name=$1 lun=$2 prio=$3
	shift 3
	on n1 hvctl vm create "$name" --vcpus 1 --memory 32M --disk "${luns[$lun]},bus=ide" \
		--kernel "$guest" --append interval_ms=100 --priority "$prio" --owner "team-$name" \
		--contact "$name@example.org" --app shop --tier "t$name" "$@" >/dev/null ||
		fail "create $name"
}
mk d1 0 high --prefer n1 --failback immediate
mk d2 1 medium --prefer n1 --failback immediate
mk d3 2 low --prefer n1
mk v4 3 medium --prefer n2
mk d5 4 medium --allow n1
mk d6 5 medium
on n1 hvctl rule add anti-affinity d1-v4 --vms d1,v4 --hard >/dev/null || fail "rule"
for v in v4 d1 d2 d3 d5; do on n1 hvctl vm start "$v" >/dev/null || fail "start $v"; done
for v in d1 d2 d3 d5; do
	[ "$(vm_node $v)" = n1 ] || fail "$v started on $(vm_node $v), not its preferred n1"
done
[ "$(vm_node v4)" = n2 ] || fail "v4 on $(vm_node v4), not n2"
for v in d1 d2 d3 d5; do
	wait_for 60 "$v commits on n1" bash -c "grep -aq '^commit seq=' $("$lab" path n1)/run/hvcluster/vms/$v/console.log"
done
declare -A boot seq
for v in d1 d2 d3 d5; do boot[$v]=$(boot_of n1 $v); seq[$v]=$(seq_of n1 $v); done

log "1. impact, then drain n1 --wait (d5 cannot go anywhere)"
imp=$(on n3 hvctl node impact n1 --json) || fail "node impact"
act() { jget "$imp" "[v for v in j['vms'] if v['name'] == '$1'][0]['$2']"; }
[ "$(act d1 action)" = live ] && [ "$(act d1 to)" = n3 ] || fail "impact d1: $imp"
[ "$(act d2 action)" = live ] || fail "impact d2: $imp"
[ "$(act d3 action)" = quick ] || fail "impact d3: $imp"
[ "$(act d5 action)" = stays ] || fail "impact d5: $imp"
[ "$(act d1 owner)" = team-d1 ] && [ "$(act d1 contact)" = d1@example.org ] || fail "impact owner: $imp"
csv=$(on n3 hvctl node impact n1 --csv) || fail "impact --csv"
python3 -c 'import csv,sys; r=list(csv.reader(sys.stdin)); assert r[0][:3] == ["name", "owner", "contact"] and len(r) == 5 and {x[0]: x[7] for x in r[1:]}["d5"] == "stays", r' <<<"$csv" ||
	fail "impact --csv: $csv"
set +e
out=$(on n3 hvctl node drain n1 --wait 2>&1)
rc=$?
set -e
log "$out"
[ $rc = 1 ] || fail "drain with d5 stuck: exit $rc, want 1"
grep -q 'd5.*cannot be placed' <<<"$out" || fail "drain does not say why d5 stays"
for v in d1 d2 d3; do [ "$(vm_node $v)" != n1 ] || fail "$v still on n1"; done
[ "$(vm_node d1)" = n3 ] || fail "d1 went to $(vm_node d1): the rule keeps it off n2 (v4)"
for v in d1 d2; do
	[ "$(last_mig $v mode)" = live ] && [ "$(last_mig $v result)" = completed ] &&
		[ "$(last_mig $v cause)" = drain ] || fail "$v: $(vmj $v)"
done
[ "$(last_mig d3 mode)" = quick ] && [ "$(last_mig d3 result)" = completed ] || fail "d3: $(vmj d3)"
for v in d1 d2 d3; do
	wait_for 30 "$v goes on on $(vm_node $v) with boot ${boot[$v]}" goes_on $v "$(vm_node $v)" "${boot[$v]}" "${seq[$v]}"
done
on_node_running d5 n1 || fail "d5 is not running on n1 any more: $(vmj d5)"
jget "$(vmj d5)" 'j["held"]' | grep -q 'cannot be placed' || fail "d5 held reason: $(vmj d5)"
[ "$(jget "$(node_json n1)" 'j["draining"]')" = True ] || fail "n1 not draining: $(node_json n1)"
on n1 hvctl vm start d6 >/dev/null || fail "start d6"
[ "$(vm_node d6)" != n1 ] || fail "d6 was placed on n1, which is in maintenance"

log "2. drain --force: d5 stops"
out=$(on n2 hvctl node drain n1 --force --wait 2>&1) || fail "drain --force: $out"
log "$out"
[ "$(vm_state d5)" = stopped ] || fail "d5 not stopped: $(vmj d5)"
nj=$(node_json n1)
[ "$(jget "$nj" 'j["maintenance"]')" = True ] && [ "$(jget "$nj" 'j["draining"]')" = False ] ||
	fail "n1 not in maintenance: $nj"
on n2 hvctl node list | grep -q '^1 *n1 *online (maintenance)' || fail "node list: $(on n2 hvctl node list)"
wait_for 20 "no QEMU left on n1" bash -c "[ \"\$($lab exec n1 -- pgrep -c -f qemu-system || true)\" = 0 ]"
set +e
out=$(on n2 hvctl node resume n3 2>&1)
rc=$?
set -e
[ $rc = 1 ] && grep -q 'not in maintenance' <<<"$out" || fail "resume of n3: exit $rc: $out"

log "3. resume n1: d1 and d2 fail back, d3 stays, d5 starts there again"
for v in d1 d2 d3; do boot[$v]=$(boot_of "$(vm_node $v)" $v); seq[$v]=$(seq_of "$(vm_node $v)" $v); done
d3_on=$(vm_node d3)
out=$(on n2 hvctl node resume n1 2>&1) || fail "resume: $out"
log "$out"
grep -q 'd1.*fails back' <<<"$out" || fail "resume does not list d1's failback"
for v in d1 d2; do
	wait_for 60 "$v back on n1" on_node_running $v n1
	[ "$(last_mig $v cause)" = failback ] && [ "$(last_mig $v mode)" = live ] || fail "$v: $(vmj $v)"
	wait_for 30 "$v goes on on n1 with boot ${boot[$v]}" goes_on $v n1 "${boot[$v]}" "${seq[$v]}"
done
wait_for 60 "d5 started on n1" on_node_running d5 n1
[ "$(vm_node d3)" = "$d3_on" ] || fail "d3 (failback none) moved to $(vm_node d3)"

log "4. SIGTERM hvnoded on n1 (shutdown_policy migrate): d1, d2 leave live first"
on n1 hvctl vm stop d5 >/dev/null || fail "stop d5"
for v in d1 d2; do boot[$v]=$(boot_of n1 $v); seq[$v]=$(seq_of n1 $v); done
n1log=$("$lab" path n1)/log/hvnoded.log
fences_of_n1() { on n2 hvctl fence history --json | python3 -c 'import json,sys; print(sum(1 for f in json.load(sys.stdin) if f["node"] == "n1"))'; }
fences_before=$(fences_of_n1)
on n1 pkill -TERM -x hvnoded
wait_for 120 "hvnoded on n1 gone" bash -c "! $lab exec n1 -- pgrep -x hvnoded"
grep -q 'shutdown (policy migrate): draining this node first' "$n1log" || fail "n1 did not drain on SIGTERM"
grep -q 'shutdown: drained, no VM left here' "$n1log" || fail "n1 stopped before it was empty"
# it ran nothing when it left: offline, and nobody fences it (no power-off of a rebooting host)
wait_for 20 "n1 offline" bash -c "$lab exec n2 -- hvctl node list --json | grep -q '\"state\": \"offline\"'"
sleep 2
[ "$(fences_of_n1)" = "$fences_before" ] || fail "n1 left cleanly but was fenced: $(on n2 hvctl fence history)"
for v in d1 d2; do
	[ "$(vm_node $v)" != n1 ] || fail "$v still assigned to n1"
	[ "$(last_mig $v cause)" = drain ] && [ "$(last_mig $v result)" = completed ] || fail "$v: $(vmj $v)"
	wait_for 30 "$v goes on with boot ${boot[$v]}" goes_on $v "$(vm_node $v)" "${boot[$v]}" "${seq[$v]}"
done
log "hvnoded back on n1: maintenance ends by itself, d1 and d2 fail back"
hd=$("$lab" path n1)
# (for step 5: this time it comes back with shutdown_policy freeze)
sed -i 's/^shutdown_policy = .*/shutdown_policy = freeze/' "$hd/hvnoded.conf"
on n1 bash -c "hvnoded -c $hd/hvnoded.conf </dev/null >>$hd/log/hvnoded.stderr 2>&1 &"
for v in d1 d2; do wait_for 90 "$v back on n1" on_node_running $v n1; done
[ "$(jget "$(node_json n1)" 'j["maintenance"]')" = False ] || fail "n1 still in maintenance"

log "5. shutdown_policy freeze on n1: SIGTERM stops d1, d2; they wait for n1, then start there"
on n1 pkill -TERM -x hvnoded
wait_for 30 "hvnoded on n1 gone (freeze)" bash -c "! $lab exec n1 -- pgrep -x hvnoded"
grep -q "shutdown: this node's VMs are frozen" "$n1log" || fail "n1 did not freeze its VMs"
frozen_wait() { [ "$(jget "$(vmj "$1")" 'j.get("frozen")')" = True ] && [ "$(vm_node "$1")" = n1 ]; }
for v in d1 d2; do wait_for 30 "$v frozen, still n1's" frozen_wait $v; done
sleep 5 # a recovery would have begun by now: n1 is fenced within a second or two
for v in d1 d2; do
	frozen_wait $v || fail "$v was not kept for n1: $(vmj $v)"
	[ "$(vm_state $v)" = fence ] || fail "$v: $(vmj $v)"
done
on n1 bash -c "hvnoded -c $hd/hvnoded.conf </dev/null >>$hd/log/hvnoded.stderr 2>&1 &"
for v in d1 d2; do wait_for 90 "$v started on n1 again" on_node_running $v n1; done
echo PASS
