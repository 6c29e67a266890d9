#!/usr/bin/env bash
# Migration in a 3-host lab, real everything (corosync, tgtd, QEMU, nbdkit, ZeroMQ + CURVE):
#   1. live: the test guest moves with its boot id (no reboot) and its commit seqs go on;
#      afterwards only the target's key is registered on its LUN;
#   2. quick: the same, back;
#   3. refused requests: to its own node, to an unknown node, a stopped VM, twice at once,
#      to a node that would break a hard anti-affinity rule (the rule is named);
#   4. a damaged block on the wire (test hook): clean abort, the VM runs on at the source;
#   5. a ZeroMQ client with an unknown key, without CURVE, and garbage on the migration
#      port: refused, no QEMU started, hvnoded fine;
#   6. save to the state LUN and restore on another node: same boot, the seqs go on;
#   7. the target host dies mid-way: the VM runs on at the source.
set -euo pipefail
. tests/it/lib.sh

guest=$top/tests/guest/hvguest.elf
rogue=$top/tests/it/mig-rogue
lun_tool=$top/tests/it/lun-tool

export LAB_ID=${LAB_ID:-mg$$}
lab_up 3 --luns 4
wait_online 3

mapfile -t luns < <("$lab" luns)
on() { local h=$1; shift; "$lab" exec "$h" -- "$@"; }
vmj() { on "${2:-n1}" hvctl vm show "$1" --json; }
vm_node() { jget "$(vmj "$1" "${2:-n1}")" 'j["assigned_node"]'; }
keys() { jget "$(on n1 "$lun_tool" keys "$1" --json)" '" ".join(sorted(set(j["keys"])))'; }
key_of() { jget "$(hvstatus "$1")" 'j["reservation_key"]'; }
console() { cat "$("$lab" path "$1")/run/hvcluster/vms/$2/console.log" 2>/dev/null || true; }
qemus() { on "$1" pgrep -c -f qemu-system || true; }
# last "seq boot" committed in VM $2's console on host $1
last_commit() { console "$1" "$2" | grep -a '^commit seq=' | tail -n 1 |
	sed 's/^commit seq=\([0-9]*\) boot=\([0-9a-f]*\).*/\1 \2/'; }
other() { for h in n1 n2 n3; do [ "$h" = "$1" ] || [ "$h" = "${2:-}" ] || { echo "$h"; return; }; done; }
last_mig() { jget "$(vmj m1)" "j.get('last_migration', {}).get('$1')"; }

on n1 hvctl vm create m1 --vcpus 1 --memory 64M --disk "${luns[0]},bus=ide" --kernel "$guest" \
	--append "interval_ms=100 dirty_mb=16" --prefer n1 >/dev/null || fail "create m1"
on n1 hvctl vm create m2 --vcpus 1 --memory 32M --disk "${luns[1]},bus=ide" --kernel "$guest" \
	--prefer n2 >/dev/null || fail "create m2"
on n1 hvctl vm start m1 >/dev/null || fail "start m1"
commits_since() { # HOST VM SEQ BOOT: a commit of boot BOOT with a seq above SEQ on HOST
	local s b
	read -r s b <<<"$(last_commit "$1" "$2")"
	[ -n "$s" ] && [ "$b" = "$4" ] && [ "$s" -gt "$3" ]
}
wait_for 60 "m1 commits" bash -c "grep -aq '^commit seq=' $("$lab" path n1)/run/hvcluster/vms/m1/console.log"

# migrate MODE: m1 to another node, checked as a user would
migrate_checked() {
	local mode=$1 src dst seq boot out boots
	src=$(vm_node m1)
	dst=$(other "$src")
	read -r seq boot <<<"$(last_commit "$src" m1)"
	boots=$(console "$dst" m1 | grep -ao 'hvguest boot id=' | wc -l || true)
	log "$mode migration of m1: $src -> $dst (boot $boot, seq $seq)"
	out=$(on n3 hvctl vm migrate m1 --to "$dst" --mode "$mode" --wait 2>&1) ||
		fail "$mode migration: hvctl exit $?: $out; $(vmj m1)"
	log "$out"
	[ "$(vm_node m1)" = "$dst" ] || fail "m1 is on $(vm_node m1), not $dst"
	[ "$(jget "$(vmj m1)" 'j["state"]')" = running ] || fail "m1 not running: $(vmj m1)"
	[ "$(last_mig result)" = completed ] || fail "last migration: $(vmj m1)"
	wait_for 30 "m1 commits on $dst, same boot $boot, after seq $seq" commits_since "$dst" m1 "$seq" "$boot"
	[ "$(console "$dst" m1 | grep -ao 'hvguest boot id=' | wc -l || true)" = "$boots" ] ||
		fail "m1 booted again on $dst"
	[ "$(keys "${luns[0]}")" = "$(key_of "$dst")" ] ||
		fail "LUN keys after the migration: $(keys "${luns[0]}"), want only $dst's $(key_of "$dst")"
	[ "$(qemus "$src")" = 0 ] || fail "a QEMU is left on $src"
}

log "1. live migration"
migrate_checked live
log "2. quick migration"
migrate_checked quick

log "3. refused requests"
refused() { # WHAT WANT HOST ARGS...: hvctl fails with a message containing WANT
	local what=$1 want=$2 host=$3 out rc
	shift 3
	set +e
	out=$(on "$host" hvctl "$@" 2>&1)
	rc=$?
	set -e
	[ $rc -ne 0 ] || fail "$what: accepted ($out)"
	grep -q -- "$want" <<<"$out" || fail "$what: message '$out' lacks '$want'"
	log "ok: $what refused: $out"
}
src=$(vm_node m1)
refused "to its own node" "already runs on node $src" n1 vm migrate m1 --to "$src"
refused "to an unknown node" "not a node of the cluster" n1 vm migrate m1 --to n9
refused "a stopped VM" "is not running" n1 vm migrate m2 --to n3
on n1 hvctl vm start m2 >/dev/null || fail "start m2"
wait_for 60 "m2 runs" bash -c "[ \"\$($lab exec n1 -- hvctl vm show m2 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = running ]"
m2node=$(vm_node m2)
if [ "$m2node" != "$src" ]; then
	on n1 hvctl rule add anti-affinity apart --vms m1,m2 --hard >/dev/null || fail "rule add"
	refused "onto m2's node (hard anti-affinity)" "apart" n1 vm migrate m1 --to "$m2node"
	on n1 hvctl rule del apart >/dev/null || fail "rule del"
fi
dst=$(other "$src" "$m2node")
on n1 hvctl vm migrate m1 --to "$dst" >/dev/null || fail "migrate m1 to $dst"
refused "twice at once" "already migrating" n2 vm migrate m1 --to "$dst"
wait_for 120 "m1 on $dst" bash -c "[ \"\$($lab exec n1 -- hvctl vm show m1 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j[\"assigned_node\"], \"migration\" in j)')\" = '$dst False' ]"
[ "$(last_mig result)" = completed ] || fail "migration to $dst: $(vmj m1)"

log "4. a damaged block on the wire: clean abort"
src=$(vm_node m1)
dst=$(other "$src")
read -r seq boot <<<"$(last_commit "$src" m1)"
echo 3 >"$("$lab" path "$src")/state/test-corrupt-migration"
before=$(qemus "$dst")
set +e
out=$(on n1 hvctl vm migrate m1 --to "$dst" --wait 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] || fail "a migration with a damaged block completed: $out"
log "ok: refused: $out"
[ "$(last_mig result)" = failed ] || fail "last migration: $(vmj m1)"
reason=$(last_mig reason)
grep -qi "checksum\|block" <<<"$reason" || fail "failure reason does not say why: $reason"
[ "$(vm_node m1)" = "$src" ] || fail "m1 moved to $(vm_node m1) after a failed migration"
wait_for 30 "m1 runs on at $src (boot $boot)" commits_since "$src" m1 "$seq" "$boot"
wait_for 30 "no QEMU of m1 left on $dst" bash -c "[ \"\$($lab exec $dst -- pgrep -c -f qemu-system || true)\" = $before ]"
[ "$(keys "${luns[0]}")" = "$(key_of "$src")" ] || fail "LUN keys after the abort: $(keys "${luns[0]}")"

log "5. strangers on the migration port"
dst_ep=$(jget "$(hvstatus "$dst")" 'j["migration_endpoint"]')
dst_key=$(jget "$(hvstatus "$dst")" 'j["migration_key"]')
before=$(qemus "$dst")
on "$src" "$rogue" curve "$dst_ep" "$dst_key" || fail "a client with an unknown key was not refused"
on "$src" "$rogue" nocurve "$dst_ep" || fail "a client without CURVE was not refused"
hostport=${dst_ep#tcp://}
on "$src" "$rogue" garbage "${hostport%:*}" "${hostport##*:}" || fail "garbage on the port"
[ "$(qemus "$dst")" = "$before" ] || fail "a stranger made $dst start a QEMU"
hvstatus "$dst" >/dev/null || fail "hvnoded on $dst does not answer after the strangers"
grep -aq "migration server" "$("$lab" path "$dst")/log/hvnoded.log" || fail "the refusals are not logged on $dst"

log "6. save and restore"
refused "a save without a state LUN" "no state LUN" n1 vm save m1
on n1 hvctl vm create m3 --vcpus 1 --memory 32M --disk "${luns[2]},bus=ide" --kernel "$guest" \
	--append interval_ms=100 --state-lun "${luns[3]}" >/dev/null || fail "create m3"
refused "a disk that is another VM's state LUN" "already the state LUN of vm m3" n1 vm create m4 \
	--vcpus 1 --memory 32M --disk "${luns[3]}" --state-lun "${luns[0]}"
on n1 hvctl vm start m3 >/dev/null || fail "start m3"
m3_commits() { local h; h=$(vm_node m3) && [ -n "$(last_commit "$h" m3)" ]; }
wait_for 60 "m3 commits" m3_commits
src=$(vm_node m3)
read -r seq boot <<<"$(last_commit "$src" m3)"
log "save m3 on $src (boot $boot, seq $seq)"
out=$(on n2 hvctl vm save m3 2>&1) || fail "vm save m3: $out; $(vmj m3)"
log "$out"
j=$(vmj m3)
[ "$(jget "$j" 'j["state"]')" = stopped ] || fail "m3 not stopped after the save: $j"
[ "$(jget "$j" 'j.get("saved")')" = True ] || fail "m3 not marked saved: $j"
[ "$(qemus "$src")" = 0 ] || [ "$src" = "$(vm_node m1)" ] || fail "a QEMU is left on $src after the save"
[ -z "$(keys "${luns[2]}")" ] || fail "keys left on m3's disk after the save: $(keys "${luns[2]}")"
[ -z "$(keys "${luns[3]}")" ] || fail "keys left on m3's state LUN after the save: $(keys "${luns[3]}")"
dst=$(other "$src")
boots=$(console "$dst" m3 | grep -ao 'hvguest boot id=' | wc -l || true)
out=$(on n1 hvctl vm restore m3 --on "$dst" 2>&1) || fail "vm restore m3: $out; $(vmj m3)"
log "$out"
[ "$(vm_node m3)" = "$dst" ] || fail "m3 restored on $(vm_node m3), not $dst"
wait_for 30 "m3 commits on $dst, same boot $boot, after seq $seq" commits_since "$dst" m3 "$seq" "$boot"
[ "$(console "$dst" m3 | grep -ao 'hvguest boot id=' | wc -l || true)" = "$boots" ] || fail "m3 booted again on $dst"
[ "$(jget "$(vmj m3)" 'j.get("saved")')" != True ] || fail "m3 still marked saved after its restore"
refused "a restore of a running VM" "no saved state" n1 vm restore m3
on n1 hvctl vm stop m3 >/dev/null || fail "stop m3"

log "7. the target dies mid-way"
src=$(vm_node m1)
dst=$(other "$src")
read -r seq boot <<<"$(last_commit "$src" m1)"
# slow it down so that it is still running when the target dies
on n1 hvctl settings migrate_bandwidth_mbps=2 >/dev/null || fail "settings set"
on n1 hvctl vm migrate m1 --to "$dst" >/dev/null || fail "migrate m1 to $dst"
wait_for 30 "the migration streams" bash -c "$lab exec n1 -- hvctl vm show m1 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if j.get(\"migration\", {}).get(\"progress\", {}).get(\"raw_bytes\", 0) > 0 else 1)'"
"$lab" kill "$dst"
wait_for 60 "the migration failed" bash -c "$lab exec $src -- hvctl vm show m1 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if \"migration\" not in j and j[\"last_migration\"][\"result\"] == \"failed\" else 1)'"
on "$src" hvctl settings migrate_bandwidth_mbps=0 >/dev/null || fail "settings set"
[ "$(vm_node m1 "$src")" = "$src" ] || fail "m1 is on $(vm_node m1 "$src") after its target died"
wait_for 30 "m1 runs on at $src (boot $boot)" commits_since "$src" m1 "$seq" "$boot"
log "ok: $(jget "$(vmj m1 "$src")" 'j["last_migration"]["reason"]')"
echo PASS
