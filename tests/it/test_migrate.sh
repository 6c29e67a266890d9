#!/usr/bin/env bash
# Migration in a 3-host lab, real everything (corosync, tgtd, QEMU, nbdkit, ZeroMQ + CURVE):
#   1. live: the test guest moves with its boot id (no reboot) and its commit seqs go on;
#      afterwards only the target's key is registered on its LUN;
#   2. quick: the same, back;
#   3. refused requests: to its own node, to an unknown node, a stopped VM, twice at once,
#      to a node in maintenance, to a node that would break a hard anti-affinity rule
#      (the rule is named);
#   4. a damaged block mid-way in the stream (test hook): clean abort, the VM runs on at
#      the source;
#   5. a ZeroMQ client with an unknown key saying a plausible HELLO: its CURVE handshake
#      refused (ZAP), logged with the key; the same client with a member's key gets past
#      it (the control); without CURVE, and garbage on the port: refused and logged; no
#      QEMU started, hvnoded fine;
#   6. save to the state LUN (2 compression threads) and restore on another node: same
#      boot, the seqs and the counter go on, only the new node's key on the disk;
#   7. cancel a slowed-down live migration: the VM runs on at the source, nothing left on
#      the target, the reason in the VM's last migration;
#   8. the target host dies mid-way: the VM runs on at the source, the reason recorded;
#      a migration to the dead node is refused.
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
# the guest's RAM counter in its last commit on host $1
last_counter() { console "$1" "$2" | grep -a '^commit seq=.*counter=' | tail -n 1 |
	sed 's/.*counter=\([0-9]*\).*/\1/'; }
# QEMUs of VM $2 on host $1
vm_qemus() { on "$1" pgrep -c -f "qemu-system.*guest=$2," || true; }
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
# the corruption hook of section 4 aims at the middle of such a stream; at most the
# middle of the guest's 16 MiB dirty area, which every stream of it carries
live_blocks=$(( $(last_mig raw_bytes) / 262144 ))
mid_block=$(( live_blocks / 2 < 32 ? live_blocks / 2 : 32 ))
[ "$mid_block" -ge 8 ] || fail "the live migration's stream has only $live_blocks blocks"
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
if [ "$m2node" = "$src" ]; then # the rule check needs m2 away from m1
	on n1 hvctl vm migrate m2 --to "$(other "$src")" --wait >/dev/null || fail "migrate m2 away"
	m2node=$(vm_node m2)
fi
[ "$m2node" != "$src" ] || fail "m2 still shares $src with m1"
on n1 hvctl rule add anti-affinity apart --vms m1,m2 --hard >/dev/null || fail "rule add"
refused "onto m2's node (hard anti-affinity)" "apart" n1 vm migrate m1 --to "$m2node"
on n1 hvctl rule del apart >/dev/null || fail "rule del"
dst=$(other "$src" "$m2node")
on n1 hvctl node drain "$dst" --wait >/dev/null || fail "node drain $dst (it runs no VM)"
refused "to a node in maintenance" "node $dst is in maintenance" n2 vm migrate m1 --to "$dst"
on n1 hvctl node resume "$dst" >/dev/null || fail "node resume $dst"
wait_for 30 "$dst out of maintenance" bash -c "$lab exec n1 -- hvctl status --json | python3 -c 'import json,sys; sys.exit(0 if not [x for x in json.load(sys.stdin)[\"nodes\"] if x[\"name\"] == \"$dst\" and x[\"maintenance\"]] else 1)'"
on n1 hvctl vm migrate m1 --to "$dst" >/dev/null || fail "migrate m1 to $dst"
refused "twice at once" "already migrating" n2 vm migrate m1 --to "$dst"
wait_for 120 "m1 on $dst" bash -c "[ \"\$($lab exec n1 -- hvctl vm show m1 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j[\"assigned_node\"], \"migration\" in j)')\" = '$dst False' ]"
[ "$(last_mig result)" = completed ] || fail "migration to $dst: $(vmj m1)"

log "4. a damaged block mid-way on the wire (block $mid_block of ~$live_blocks): clean abort"
src=$(vm_node m1)
dst=$(other "$src")
read -r seq boot <<<"$(last_commit "$src" m1)"
echo $((mid_block + 1)) >"$("$lab" path "$src")/state/test-corrupt-migration"
before=$(qemus "$dst")
set +e
out=$(on n1 hvctl vm migrate m1 --to "$dst" --wait 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] || fail "a migration with a damaged block completed: $out"
log "ok: refused: $out"
[ "$(last_mig result)" = failed ] || fail "last migration: $(vmj m1)"
reason=$(last_mig reason)
grep -q "block $mid_block: checksum mismatch" <<<"$reason" || fail "failure reason does not say why: $reason"
[ "$(vm_node m1)" = "$src" ] || fail "m1 moved to $(vm_node m1) after a failed migration"
wait_for 30 "m1 runs on at $src (boot $boot)" commits_since "$src" m1 "$seq" "$boot"
wait_for 30 "no QEMU of m1 left on $dst" bash -c "[ \"\$($lab exec $dst -- pgrep -c -f qemu-system || true)\" = $before ]"
[ "$(keys "${luns[0]}")" = "$(key_of "$src")" ] || fail "LUN keys after the abort: $(keys "${luns[0]}")"

log "5. strangers on the migration port"
dst_ep=$(jget "$(hvstatus "$dst")" 'j["migration_endpoint"]')
dst_key=$(jget "$(hvstatus "$dst")" 'j["migration_key"]')
dst_log=$("$lab" path "$dst")/log/hvnoded.log
# a HELLO for a plausible migration of m1 from its node: only the key can refuse it
src_id=$(jget "$(hvstatus n1)" "[x['id'] for x in j['nodes'] if x['name'] == '$src'][0]")
hello=$(jget "$(vmj m1)" "json.dumps({'vm': j['name'], 'uuid': j['uuid'], 'id': j['last_migration']['id'] + 1000, 'from': $src_id, 'mode': 'live'}, separators=(',', ':'))")
before=$(qemus "$dst")
set +e
out=$(on "$src" "$rogue" curve "$dst_ep" "$dst_key" "$hello" 2>&1)
rc=$?
set -e
log "$out"
[ $rc = 0 ] || fail "a client with an unknown key was not refused in its handshake (exit $rc)"
grep -q "handshake failed: authentication" <<<"$out" || fail "no ZAP refusal seen by the client"
rogue_key=$(sed -n 's/^our key: \([^ ]*\) .*/\1/p' <<<"$out")
grep -aqF "refused a connection from" "$dst_log" && grep -aqF "unknown key $rogue_key" "$dst_log" ||
	fail "$dst did not log the refusal of key $rogue_key"
# the control: the same HELLO with a member's key gets past the handshake (and is then
# refused for what it says), so the check above can tell the two apart
keydir=$(mktemp -d)
cp "$("$lab" path "$src")/state/migrate.key" "$("$lab" path "$src")/state/migrate.pub" "$keydir/"
set +e
out=$(on "$src" "$rogue" curve "$dst_ep" "$dst_key" "$hello" "$keydir" 2>&1)
rc=$?
set -e
rm -rf "$keydir"
log "$out"
[ $rc = 1 ] || fail "the control client with $src's key did not get past the handshake (exit $rc)"
hs_line="server.c: migration server: a connection failed its handshake"
handshakes() { grep -ac "$hs_line" "$dst_log" || true; }
n=$(handshakes)
set +e
out=$(on "$src" "$rogue" nocurve "$dst_ep" "$hello" 2>&1)
rc=$?
set -e
[ $rc = 0 ] || fail "a client without CURVE was not refused (exit $rc): $out"
wait_for 10 "$dst logs the client without CURVE" bash -c "[ \$(grep -ac '$hs_line' '$dst_log') -gt $n ]"
n=$(handshakes)
hostport=${dst_ep#tcp://}
on "$src" "$rogue" garbage "${hostport%:*}" "${hostport##*:}" || fail "garbage on the port"
wait_for 10 "$dst logs the random bytes" grep -aq "migration server: garbage: a connection" "$dst_log"
wait_for 10 "$dst logs the junk in place of a CURVE handshake" bash -c "[ \$(grep -ac '$hs_line' '$dst_log') -gt $n ]"
[ "$(qemus "$dst")" = "$before" ] || fail "a stranger made $dst start a QEMU"
[ "$(vm_qemus "$dst" m1)" = 0 ] || fail "a QEMU for m1 runs on $dst"
hvstatus "$dst" >/dev/null || fail "hvnoded on $dst does not answer after the strangers"

log "6. save and restore"
refused "a save without a state LUN" "no state LUN" n1 vm save m1
on n1 hvctl vm create m3 --vcpus 1 --memory 32M --disk "${luns[2]},bus=ide" --kernel "$guest" \
	--append interval_ms=100 --state-lun "${luns[3]}" >/dev/null || fail "create m3"
refused "a disk that is another VM's state LUN" "already the state LUN of vm m3" n1 vm create m4 \
	--vcpus 1 --memory 32M --disk "${luns[3]}" --state-lun "${luns[0]}"
on n1 hvctl vm start m3 >/dev/null || fail "start m3"
m3_commits() { local h; h=$(vm_node m3) && [ -n "$(last_commit "$h" m3)" ]; }
wait_for 60 "m3 commits" m3_commits
on n1 hvctl settings migrate_threads=2 >/dev/null || fail "settings set"
src=$(vm_node m3)
read -r seq boot <<<"$(last_commit "$src" m3)"
counter=$(last_counter "$src" m3)
log "save m3 on $src (boot $boot, seq $seq, counter $counter)"
out=$(on n2 hvctl vm save m3 2>&1) || fail "vm save m3: $out; $(vmj m3)"
log "$out"
j=$(vmj m3)
[ "$(jget "$j" 'j["state"]')" = stopped ] || fail "m3 not stopped after the save: $j"
[ "$(jget "$j" 'j.get("saved")')" = True ] || fail "m3 not marked saved: $j"
[ "$(qemus "$src")" = 0 ] || [ "$src" = "$(vm_node m1)" ] || fail "a QEMU is left on $src after the save"
[ -z "$(keys "${luns[2]}")" ] || fail "keys left on m3's disk after the save: $(keys "${luns[2]}")"
[ -z "$(keys "${luns[3]}")" ] || fail "keys left on m3's state LUN after the save: $(keys "${luns[3]}")"
grep -aq "vm m3: save to .*: LZ4, 2 compression threads" "$("$lab" path "$src")/log/hvnoded.log" ||
	fail "the save did not follow migrate_threads=2"
on n1 hvctl settings migrate_threads=1 >/dev/null || fail "settings set"
dst=$(other "$src")
boots=$(console "$dst" m3 | grep -ao 'hvguest boot id=' | wc -l || true)
out=$(on n1 hvctl vm restore m3 --on "$dst" 2>&1) || fail "vm restore m3: $out; $(vmj m3)"
log "$out"
[ "$(vm_node m3)" = "$dst" ] || fail "m3 restored on $(vm_node m3), not $dst"
wait_for 30 "m3 commits on $dst, same boot $boot, after seq $seq" commits_since "$dst" m3 "$seq" "$boot"
[ "$(console "$dst" m3 | grep -ao 'hvguest boot id=' | wc -l || true)" = "$boots" ] || fail "m3 booted again on $dst"
[ "$(last_counter "$dst" m3)" -gt "$counter" ] ||
	fail "m3's counter on $dst ($(last_counter "$dst" m3)) does not go on from $counter"
[ "$(keys "${luns[2]}")" = "$(key_of "$dst")" ] ||
	fail "m3's disk keys after the restore: $(keys "${luns[2]}"), want only $dst's $(key_of "$dst")"
[ "$(jget "$(vmj m3)" 'j.get("saved")')" != True ] || fail "m3 still marked saved after its restore"
refused "a restore of a running VM" "no saved state" n1 vm restore m3
on n1 hvctl vm stop m3 >/dev/null || fail "stop m3"

log "7. cancel a live migration against real QEMU"
src=$(vm_node m1)
dst=$(other "$src")
read -r seq boot <<<"$(last_commit "$src" m1)"
before=$(vm_qemus "$dst" m1)
# slow it down so that it streams for a while
on n1 hvctl settings migrate_bandwidth_mbps=2 >/dev/null || fail "settings set"
on n1 hvctl vm migrate m1 --to "$dst" >/dev/null || fail "migrate m1 to $dst"
wait_for 30 "the migration streams" bash -c "$lab exec n1 -- hvctl vm show m1 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if j.get(\"migration\", {}).get(\"progress\", {}).get(\"raw_bytes\", 0) > 0 else 1)'"
on n2 hvctl vm migrate-cancel m1 >/dev/null || fail "migrate-cancel m1"
wait_for 60 "the migration is over" bash -c "$lab exec n1 -- hvctl vm show m1 --json | python3 -c 'import json,sys; sys.exit(0 if \"migration\" not in json.load(sys.stdin) else 1)'"
[ "$(last_mig result)" = cancelled ] || fail "last migration after the cancel: $(vmj m1)"
[ "$(last_mig reason)" = "cancelled by an admin" ] || fail "cancel reason: $(last_mig reason)"
[ "$(vm_node m1)" = "$src" ] || fail "m1 is on $(vm_node m1) after its cancelled migration"
[ "$(jget "$(vmj m1)" 'j["state"]')" = running ] || fail "m1 not running after the cancel: $(vmj m1)"
wait_for 30 "m1 runs on at $src (boot $boot)" commits_since "$src" m1 "$seq" "$boot"
wait_for 30 "no QEMU of m1 left on $dst" bash -c "[ \"\$($lab exec $dst -- pgrep -c -f 'qemu-system.*guest=m1,' || true)\" = $before ]"
[ "$(keys "${luns[0]}")" = "$(key_of "$src")" ] || fail "LUN keys after the cancel: $(keys "${luns[0]}")"
log "ok: cancelled: $(last_mig reason)"

log "8. the target dies mid-way"
src=$(vm_node m1)
dst=$(other "$src")
read -r seq boot <<<"$(last_commit "$src" m1)"
on n1 hvctl vm migrate m1 --to "$dst" >/dev/null || fail "migrate m1 to $dst"
wait_for 30 "the migration streams" bash -c "$lab exec n1 -- hvctl vm show m1 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if j.get(\"migration\", {}).get(\"progress\", {}).get(\"raw_bytes\", 0) > 0 else 1)'"
"$lab" kill "$dst"
wait_for 60 "the migration failed" bash -c "$lab exec $src -- hvctl vm show m1 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if \"migration\" not in j and j[\"last_migration\"][\"result\"] == \"failed\" else 1)'"
on "$src" hvctl settings migrate_bandwidth_mbps=0 >/dev/null || fail "settings set"
[ "$(vm_node m1 "$src")" = "$src" ] || fail "m1 is on $(vm_node m1 "$src") after its target died"
wait_for 30 "m1 runs on at $src (boot $boot)" commits_since "$src" m1 "$seq" "$boot"
reason=$(jget "$(vmj m1 "$src")" 'j["last_migration"]["reason"]')
log "ok: $reason"
grep -Eqi "target|$dst|silent|answer" <<<"$reason" || fail "the failure's reason does not say the target is gone: '$reason'"
wait_for 60 "$dst seen down" bash -c "$lab exec $src -- hvctl status --json | python3 -c 'import json,sys; sys.exit(0 if [x for x in json.load(sys.stdin)[\"nodes\"] if x[\"name\"] == \"$dst\" and x[\"state\"] != \"online\"] else 1)'"
refused "to a node that is down" "node $dst is not online" "$src" vm migrate m1 --to "$dst"
echo PASS
