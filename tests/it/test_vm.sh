#!/usr/bin/env bash
# VMs on shared iSCSI storage in a 2-host lab: hvctl vm create/start/stop
# with the test guest on a LUN served by nbdkit; LUN ownership by persistent
# reservations; a takeover from another node pauses the VM and no write of
# it lands afterwards; per-VM uid and sandbox; bad definitions refused.
set -euo pipefail
. tests/it/lib.sh

lun_tool=$top/tests/it/lun-tool
guest=$top/tests/guest/hvguest.elf
hvgrec=$top/tests/guest/hvgrec

export LAB_ID=${LAB_ID:-vm$$}
lab_up 2 --luns 3
wait_online 2

mapfile -t luns < <("$lab" luns)
url=${luns[0]}
san=$("$lab" path san)
img=$san/lun1.img

on() { local h=$1; shift; "$lab" exec "$h" -- "$@"; }
vmj() { on "$1" hvctl vm show "$2" --json; }
vm_state() { jget "$(vmj "$1" "$2")" 'j["state"]'; }
keys_json() { on n1 "$lun_tool" keys "$1" --json; }
status_field() { jget "$(hvstatus "$1")" "j[\"$2\"]"; }

key1=$(status_field n1 reservation_key)
key2=$(status_field n2 reservation_key)
init2=$(status_field n2 initiator)
log "n1 key $key1, n2 key $key2 ($init2)"
[ "$key1" != "$key2" ] || fail "n1 and n2 have the same reservation key"

log "bad definitions are refused, nothing is created"
expect_refused() { # what, expected message part, hvctl args...
	local what=$1 want=$2 out rc
	shift 2
	set +e
	out=$(on n1 hvctl vm create "$@" 2>&1)
	rc=$?
	set -e
	[ $rc -eq 1 ] || fail "$what: exit $rc, want 1 ($out)"
	grep -q -- "$want" <<<"$out" || fail "$what: message '$out' lacks '$want'"
	log "ok: $what refused: $out"
}
expect_refused "no disk" "disks: missing" bad1 --vcpus 1 --memory 32M
expect_refused "non-iSCSI URL" "is not an iSCSI URL" bad2 --vcpus 1 --memory 32M --disk file:///etc/passwd
expect_refused "absurd size" "out of range" bad3 --vcpus 1 --memory 999999T --disk "$url"
expect_refused "bad name" "not valid" "bad name" --vcpus 1 --memory 32M --disk "$url"
expect_refused "unreachable LUN" "iscsi://10.77.0.2:3260/iqn.2026-11.lab.hvcluster:nosuchtarget/1" \
	bad4 --vcpus 1 --memory 32M --disk iscsi://10.77.0.2:3260/iqn.2026-11.lab.hvcluster:nosuchtarget/1
set +e
out=$(on n1 hvctl vm create bad5 --vcpus 1 --memory 32M --disk "$url" --frobnicate 2>&1); rc=$?
set -e
[ $rc -eq 2 ] || fail "unknown option: exit $rc, want 2"
[ "$(jget "$(on n1 hvctl vm list --json)" 'len(j)')" = 0 ] || fail "a refused VM was created"

log "create the test guest on ${url}, with a NIC on n1's bridge br0"
on n1 ip link add br0 type bridge
on n1 ip link set br0 up
on n1 hvctl vm create g1 --vcpus 1 --memory 32M --disk "$url,bus=ide" --nic bridge=br0 --kernel "$guest" --prefer n1 \
	--append interval_ms=50 --owner alice --contact alice@example.org --app shop --tier db \
	--class internal >/dev/null || fail "vm create g1"
expect_refused "duplicate name" "already exists" g1 --vcpus 1 --memory 32M --disk "${luns[1]}"
j=$(vmj n1 g1)
[ "$(jget "$j" 'j["state"]')" = stopped ] || fail "new VM not stopped: $j"
[ "$(jget "$j" 'j["owner"]')" = alice ] || fail "owner lost: $j"
[ "$(jget "$j" 'j["disks"][0]["bus"]')" = ide ] || fail "disk bus lost: $j"

log "start g1 on n1: commits on the console, only n1's key on the LUN"
on n1 hvctl vm start g1 >/dev/null || fail "vm start g1"
[ "$(vm_state n1 g1)" = running ] || fail "g1 not running after start: $(vmj n1 g1)"
wait_for 60 "g1 commits on its console" bash -c "$lab exec n1 -- hvctl vm console-log g1 --lines 200 | grep -c '^commit seq=' | awk '\$1 >= 5 {ok=1} END {exit !ok}'"
k=$(keys_json "$url")
[ "$(jget "$k" 'sorted(set(j["keys"]))')" = "['$key1']" ] || fail "LUN keys are not only n1's: $k"
[ "$(jget "$k" 'j["holder"]')" = "$key1" ] || fail "n1 does not hold the reservation: $k"

log "QEMU runs under its own uid with the sandbox on; its QMP socket is private"
pid=$(jget "$(vmj n1 g1)" 'j["pid"]')
uid=$(on n1 awk '/^Uid:/ {print $2}' /proc/$pid/status)
seccomp=$(on n1 awk '/^Seccomp:/ {print $2}' /proc/$pid/status)
[ "$uid" -ge 1000 ] || fail "QEMU runs as uid $uid"
[ "$seccomp" = 2 ] || fail "QEMU's seccomp mode is $seccomp, want 2 (filter)"
on n1 cat /proc/$pid/cmdline | tr '\0' ' ' | grep -- "-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny" >/dev/null ||
	fail "QEMU command line lacks the sandbox"
mac=$(jget "$(vmj n1 g1)" 'j["nics"][0]["mac"]')
on n1 cat /proc/$pid/cmdline | tr '\0' ' ' | grep -- "mac=$mac" >/dev/null || fail "QEMU has no NIC with g1's MAC $mac"
on n1 ip -o link show master br0 | grep ': hv[0-9]*n0[:@]' >/dev/null || fail "no tap of g1 on br0: $(on n1 ip -o link show master br0)"
dir=$(jget "$(vmj n1 g1)" 'j["dir"]')
[ "$(on n1 stat -c '%a %u' "$dir")" = "700 $uid" ] || fail "VM dir $dir is $(on n1 stat -c '%a %u' "$dir")"
[ "$(on n1 stat -c '%a %u' "$dir/qmp.sock")" = "600 $uid" ] || fail "QMP socket is $(on n1 stat -c '%a %u' "$dir/qmp.sock")"
other=$((uid + 1))
# /usr/bin/python3: a python3 in root's home is not for uid $other, and a probe that
# cannot run must not pass for a refusal; see test_isolation.sh for the full set
got=$(on n1 setpriv --reuid "$other" --regid "$other" --clear-groups /usr/bin/python3 -c \
	"import errno,socket,sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1]); print('connected')
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))" "$dir/qmp.sock") || fail "QMP probe as uid $other did not run"
[ "$got" = EACCES ] || fail "uid $other connecting to g1's QMP socket: $got, want EACCES"

log "n2 tries to take the LUN without takeover: refused, naming n1's key"
set +e
out=$(on n2 "$lun_tool" acquire "$url" --key "$key2" --initiator "$init2" 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "n2 acquire without takeover: exit $rc ($out)"
grep -qi "$key1" <<<"$out" || fail "refusal does not name n1's key: $out"
[ "$(vm_state n1 g1)" = running ] || fail "g1 disturbed by a refused acquire"

log "n2 takes over (PREEMPT): g1 pauses on the I/O error, nothing of it lands afterwards"
on n2 "$lun_tool" acquire "$url" --key "$key2" --initiator "$init2" --takeover >/dev/null ||
	fail "n2 acquire with takeover"
wait_for 20 "g1 paused on an I/O error" bash -c "[ \"\$($lab exec n1 -- hvctl vm show g1 --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j[\"state\"], j.get(\"reason\"))')\" = 'paused io-error' ]"
before=$("$hvgrec" check "$img" --json) || true
sleep 3
after=$("$hvgrec" check "$img" --json) || true
[ "$(jget "$before" 'j["max_seq"]')" = "$(jget "$after" 'j["max_seq"]')" ] ||
	fail "g1 wrote after the takeover: max seq $(jget "$before" 'j["max_seq"]') -> $(jget "$after" 'j["max_seq"]')"
k=$(keys_json "$url")
[ "$(jget "$k" 'sorted(set(j["keys"]))')" = "['$key2']" ] || fail "after takeover the LUN keys are $k"

log "stop g1: QEMU and its disk server gone; n2 releases; no registration left"
on n1 hvctl vm stop g1 >/dev/null || fail "vm stop g1"
[ "$(vm_state n1 g1)" = stopped ] || fail "g1 not stopped"
on n1 kill -0 "$pid" 2>/dev/null && fail "QEMU pid $pid still alive"
on n1 ip -o link show master br0 | grep ': hv' >/dev/null && fail "g1's tap outlived its QEMU: $(on n1 ip -o link show master br0)"
on n2 "$lun_tool" release "$url" --key "$key2" --initiator "$init2" >/dev/null || fail "n2 release"
[ "$(jget "$(keys_json "$url")" 'len(j["keys"])')" = 0 ] || fail "keys left: $(keys_json "$url")"

log "start again, stop: the guest continues its sequence, no registration left"
on n1 hvctl vm start g1 >/dev/null || fail "second vm start g1"
wait_for 60 "g1 resumes its record sequence" bash -c "$lab exec n1 -- hvctl vm console-log g1 --lines 400 | grep -q '^hvguest resume seq=[1-9]'"
on n1 hvctl vm stop g1 >/dev/null || fail "second vm stop g1"
[ "$(jget "$(keys_json "$url")" 'len(j["keys"])')" = 0 ] || fail "keys left after stop: $(keys_json "$url")"
"$hvgrec" check "$img" --json >/dev/null || fail "records on the LUN are not consistent: $("$hvgrec" check "$img")"

log "delete: refused while running, then done; the definitions survive a power cycle of n1"
on n1 hvctl vm create g2 --vcpus 1 --memory 32M --disk "${luns[1]},bus=ide" --kernel "$guest" --prefer n1 >/dev/null
on n1 hvctl vm start g2 >/dev/null || fail "vm start g2"
set +e
out=$(on n1 hvctl vm delete g2 2>&1); rc=$?
set -e
[ $rc -eq 1 ] && grep -q "not stopped" <<<"$out" || fail "delete of a running VM: exit $rc ($out)"
on n1 hvctl vm stop g2 >/dev/null || fail "vm stop g2"
on n1 hvctl vm delete g1 >/dev/null || fail "vm delete g1"
set +e
on n1 hvctl vm show g1 >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "deleted g1 still shown"
"$lab" kill n1
"$lab" start n1
wait_for 30 "n1 back and quorate" bash -c "$lab exec n1 -- hvctl status --json | grep -q '\"quorate\": true'"
names=$(jget "$(on n1 hvctl vm list --json)" '" ".join(sorted(v["name"] for v in j))')
[ "$names" = g2 ] || fail "after a power cycle n1 knows VMs '$names', want 'g2'"
echo PASS
