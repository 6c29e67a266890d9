#!/usr/bin/env bash
# Failover in a 3-host lab, real everything: 4 HA test guests on their own LUNs in two hard
# anti-affinity pairs.
#   1. power a host off: it is fenced on storage, its VMs run again on the survivors, the
#      pairs stay apart, each LUN's records show one boot after another (never two at
#      once), and the last seq the dead guest printed as committed is on its disk;
#   2. cut a host's network: it stops its VMs (no quorum), the others fence it and recover
#      them; heal: it rejoins, says hello, and nothing runs twice;
#   3. power the leader's host off: a new leader fences it and finishes the recovery.
set -euo pipefail
. tests/it/lib.sh

guest=$top/tests/guest/hvguest.elf
hvgrec=$top/tests/guest/hvgrec

export LAB_ID=${LAB_ID:-fo$$}
lab_up 3 --luns 4
wait_online 3

mapfile -t luns < <("$lab" luns)
san=$("$lab" path san)
on() { local h=$1; shift; "$lab" exec "$h" -- "$@"; }
status() { on "${1:-n1}" hvctl status --json; }
vm_node() { jget "$(status "${2:-n1}")" "[v['node'] for v in j['vms'] if v['name'] == '$1'][0]"; }
vm_state() { jget "$(status "${2:-n1}")" "[v['state'] for v in j['vms'] if v['name'] == '$1'][0]"; }
vms=(a1 a2 b1 b2)

i=0
for v in "${vms[@]}"; do
	on n1 hvctl vm create "$v" --vcpus 1 --memory 32M --disk "${luns[$i]},bus=ide" \
		--kernel "$guest" --append interval_ms=100 --priority high >/dev/null || fail "create $v"
	i=$((i + 1))
done
on n1 hvctl rule add anti-affinity pair-a --vms a1,a2 --hard >/dev/null || fail "rule pair-a"
on n2 hvctl rule add anti-affinity pair-b --vms b1,b2 --hard >/dev/null || fail "rule pair-b"
for v in "${vms[@]}"; do
	on n3 hvctl vm start "$v" >/dev/null || fail "start $v"
done

all_started() { # [HOST]: every VM started, on a node other than $avoid
	local j
	j=$(status "${1:-n1}") || return 1
	python3 -c '
import json, sys
j = json.loads(sys.argv[1]); avoid = sys.argv[2]
ok = all(v["state"] == "started" and v["node"] not in (None, avoid) for v in j["vms"])
sys.exit(0 if ok and len(j["vms"]) == 4 else 1)' "$j" "${avoid:-}"
}

apart() { # HOST: the pairs are on distinct nodes
	local h=$1
	[ "$(vm_node a1 "$h")" != "$(vm_node a2 "$h")" ] || fail "a1 and a2 share $(vm_node a1 "$h")"
	[ "$(vm_node b1 "$h")" != "$(vm_node b2 "$h")" ] || fail "b1 and b2 share $(vm_node b1 "$h")"
}

# LUN records: one boot at a time, every seq the guest printed as committed is on disk
check_disks() {
	local i=0 v out
	for v in "${vms[@]}"; do
		i=$((i + 1))
		out=$("$hvgrec" check "$san/lun$i.img" --json) || fail "$v: LUN $i inconsistent: $("$hvgrec" check "$san/lun$i.img")"
		[ "$(jget "$out" 'j["boots_overlap"]')" = False ] || fail "$v: two boots interleave on LUN $i"
	done
}

# last_commit HOST VM: "seq boot" of the last commit line in VM's console on HOST (powered off or not)
last_commit() {
	local f
	f=$("$lab" path "$1")/run/hvcluster/vms/$2/console.log
	grep -a '^commit seq=' "$f" | tail -n 1 | sed 's/^commit seq=\([0-9]*\) boot=\([0-9a-f]*\).*/\1 \2/'
}

committed_on_disk() { # VM LUN_INDEX "seq boot"
	local out seq boot
	read -r seq boot <<<"$3"
	out=$("$hvgrec" check "$san/lun$2.img" --json)
	python3 -c '
import json, sys
j = json.loads(sys.argv[1]); seq = int(sys.argv[2]); boot = sys.argv[3]
b = [x for x in j["boots"] if x["id"] == boot]
sys.exit(0 if b and b[0]["last_seq"] >= seq else 1)' "$out" "$seq" "$boot" ||
		fail "$1: commit seq $seq of boot $boot, printed before the failure, is not on LUN $2"
}

wait_for 90 "4 VMs started" all_started
apart n1
sleep 2
check_disks
log "placement: a1=$(vm_node a1) a2=$(vm_node a2) b1=$(vm_node b1) b2=$(vm_node b2)"

log "1. power off the host of a1 (not the leader when possible)"
victim=$(vm_node a1)
[ "$victim" != n1 ] || victim=$(vm_node a2)
[ "$victim" != n1 ] || fail "a1 and a2 both on n1?"
on_victim=$(jget "$(status)" "' '.join(v['name'] for v in j['vms'] if v['node'] == '$victim')")
"$lab" kill "$victim"
avoid=$victim wait_for 60 "VMs of $victim ($on_victim) recovered on the survivors" all_started
apart n1
[ "$(jget "$(status)" "[n['state'] for n in j['nodes'] if n['name'] == '$victim'][0]")" = fenced ] ||
	fail "$victim is not fenced: $(status)"
sleep 2
check_disks
for v in $on_victim; do
	idx=$(( $(printf '%s\n' "${vms[@]}" | grep -n "^$v\$" | cut -d: -f1) ))
	lc=$(last_commit "$victim" "$v")
	[ -n "$lc" ] || fail "$v printed no commit on $victim"
	committed_on_disk "$v" "$idx" "$lc"
	log "ok: $v: last commit on $victim ($lc) is on its LUN"
done
"$lab" start "$victim"
wait_online 3

log "2. cut the network of a VM's host: it stops its VMs, the others recover them"
part=$(vm_node b1)
[ "$part" != n1 ] || part=$(vm_node b2)
"$lab" partition "$part"
avoid=$part wait_for 60 "VMs of $part recovered" all_started
apart n1
wait_for 30 "$part runs no QEMU any more" bash -c "! $lab exec $part -- pgrep -f qemu-system >/dev/null"
"$lab" heal "$part"
wait_online 3
sleep 2
qemus() { on "$1" pgrep -c -f qemu-system || true; } # pgrep -c prints 0 and fails when none
total=0
for h in n1 n2 n3; do
	n=$(qemus "$h")
	log "$h runs $n QEMU"
	total=$((total + n))
done
[ "$total" -eq 4 ] || fail "$total QEMU processes run for 4 VMs"
check_disks

log "3. power off the leader's host"
leader=$(jget "$(status n2)" 'j["leader_name"]')
survivor=n1
[ "$leader" != n1 ] || survivor=n2
"$lab" kill "$leader"
avoid=$leader wait_for 60 "a new leader recovered the VMs of $leader" all_started "$survivor"
new=$(jget "$(status "$survivor")" 'j["leader_name"]')
[ "$new" != "$leader" ] || fail "leader still $leader"
sleep 2
check_disks
log "ok: new leader $new"
echo PASS
