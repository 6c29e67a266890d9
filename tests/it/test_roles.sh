#!/usr/bin/env bash
# Roles and audit in a 2-host lab: hvctl run as unprivileged users (setpriv) against the real
# hvnoded. Nobody without a binding may do anything; a viewer reads but cannot stop; an
# operator scoped to app shop starts and migrates a shop VM (it moves) but not another app's,
# reads a shop VM's console but not another's, and cannot add rules or create VMs; a user
# gets a role through a unix group (a binding scoped by a name pattern) and pauses and resumes
# a VM with it; a vm-admin scoped by owner creates and deletes that owner's VMs, not others'.
# Every change asked for is in the audit log of every node with the hvctl command, its object
# and the result: allowed, denied (with why), refused before it was sent (a VM that runs
# elsewhere), and pause and resume that only one node carries out. The viewer's security
# report names what an auditor must hear of: VMs without owner or contact, a soft rule broken.
# The viewer's inventory (JSON, and CSV as a spreadsheet reads it) lists every VM with its node,
# owner and app, and every host with its effective classification; vm list filters by app,
# owner and node, and names a node that does not exist.
set -euo pipefail
. tests/it/lib.sh

guest=$top/tests/guest/hvguest.elf
export LAB_ID=${LAB_ID:-ro$$}
lab_up 2 --luns 4
# users and a group of this test's own (the lab's hosts share the machine's /etc/passwd)
grp=hv${LAB_ID}ops ug=hv${LAB_ID}g ux=hv${LAB_ID}x ua=hv${LAB_ID}a
users_cleanup() {
	local u
	for u in "$ug" "$ux" "$ua"; do userdel "$u" >/dev/null 2>&1 || true; done
	groupdel "$grp" >/dev/null 2>&1 || true
}
trap 'rc=$?; users_cleanup; (exit $rc); lab_cleanup' EXIT
groupadd "$grp" || fail "groupadd $grp"
useradd -M -s /usr/sbin/nologin -G "$grp" "$ug" || fail "useradd $ug"
useradd -M -s /usr/sbin/nologin "$ux" || fail "useradd $ux"
useradd -M -s /usr/sbin/nologin "$ua" || fail "useradd $ua"
wait_online 2
mapfile -t luns < <("$lab" luns)
on() { local h=$1; shift; "$lab" exec "$h" -- "$@"; }
as() { # USER HOST hvctl-args...: run hvctl as USER
	local u=$1 h=$2
	shift 2
	on "$h" setpriv --reuid "$u" --regid "$(id -gn "$u")" --clear-groups "$top/hvctl" "$@"
}
denied() { # what USER HOST args...: must exit 1 with "permission denied"
	local what=$1 rc
	shift
	set +e
	out=$(as "$@" 2>&1); rc=$?
	set -e
	[ $rc -eq 1 ] && grep -q "permission denied" <<<"$out" || fail "$what: exit $rc ($out)"
	log "ok: $what: $out"
}
denied_for() { # TEXT what USER HOST args...: denied, and the message says TEXT
	local text=$1
	shift
	denied "$@"
	grep -qF "$text" <<<"$out" || fail "$1: the message does not say '$text' ($out)"
}
vm_node() { jget "$(on n1 hvctl vm show "$1" --json)" 'j["node"]'; }
vm_state() { jget "$(on n1 hvctl vm show "$1" --json)" 'j["state"]'; }

on n1 hvctl vm create shop1 --vcpus 1 --memory 32M --disk "${luns[0]},bus=ide" --kernel "$guest" \
	--app shop --owner alice >/dev/null
on n1 hvctl vm create crm1 --vcpus 1 --memory 32M --disk "${luns[1]},bus=ide" --kernel "$guest" \
	--app crm --owner bob --contact 'Bob "B" Smith, +1 555' --class confidential >/dev/null
on n1 hvctl vm start crm1 >/dev/null

denied "no binding: status" nobody n1 status
on n1 hvctl acl add viewers --user nobody --role viewer >/dev/null || fail "acl add viewers"
on n1 hvctl acl add shop-ops --user daemon --role operator --app shop >/dev/null || fail "acl add shop-ops"
wait_for 10 "bindings on n2" bash -c "$lab exec n2 -- hvctl acl list --json | grep -q shop-ops"

as nobody n2 vm list --json >/dev/null || fail "viewer cannot list VMs"
denied "viewer: stop" nobody n2 vm stop crm1
as daemon n2 vm start shop1 >/dev/null || fail "shop operator cannot start a shop VM"
denied "shop operator: another app's VM" daemon n2 vm stop crm1
denied "shop operator: rule add" daemon n1 rule add anti-affinity x --vms shop1,crm1
denied "shop operator: create" daemon n1 vm create shop2 --vcpus 1 --memory 32M --disk "${luns[1]}"
[ "$(vm_state crm1)" = running ] || fail "crm1 disturbed"

log "the shop operator migrates shop1 (it moves), not crm1"
src=$(vm_node shop1)
dst=$([ "$src" = n1 ] && echo n2 || echo n1)
as daemon n2 vm migrate shop1 --to "$dst" --wait >/dev/null || fail "shop operator cannot migrate shop1"
[ "$(vm_node shop1)" = "$dst" ] && [ "$(vm_state shop1)" = running ] ||
	fail "shop1 after its migration to $dst: on $(vm_node shop1), $(vm_state shop1)"
log "ok: shop1 moved from $src to $dst"
crm_before=$(vm_node crm1)
denied_for "vm.migrate needs operator on vm crm1" "shop operator: migrate crm1" daemon n2 vm migrate crm1
[ "$(vm_node crm1)" = "$crm_before" ] && [ "$(vm_state crm1)" = running ] || fail "crm1 moved"

log "the shop operator reads shop1's console, not crm1's; a viewer bound to all reads both"
as daemon "$dst" vm console-log shop1 >/dev/null || fail "shop operator cannot read shop1's console"
denied_for "vm.console needs viewer on vm crm1" "shop operator: crm1's console" daemon "$crm_before" \
	vm console-log crm1
as nobody "$crm_before" vm console-log crm1 >/dev/null || fail "viewer cannot read crm1's console"

log "a change refused before it was sent is audited: vm shutdown on the node shop1 left"
set +e
out=$(as daemon "$src" vm shutdown shop1 2>&1); rc=$?
set -e
[ $rc -eq 1 ] && grep -q "runs on node $dst, not here" <<<"$out" || fail "shutdown on $src: exit $rc ($out)"

log "a role through a unix group: operator of the VMs named shop*"
on n1 hvctl acl add grp-ops --group "$grp" --role operator --vms 'shop*' >/dev/null ||
	fail "acl add grp-ops"
wait_for 10 "grp-ops on n2" bash -c "$lab exec n2 -- hvctl acl list --json | grep -q grp-ops"
as "$ug" "$dst" vm pause shop1 >/dev/null || fail "$ug (group $grp) cannot pause shop1"
as "$ug" "$dst" vm resume shop1 >/dev/null || fail "$ug (group $grp) cannot resume shop1"
denied_for "vm.stop needs operator on vm crm1" "group operator of shop*: crm1" "$ug" n1 vm stop crm1
denied_for "has no role" "not in the group: status" "$ux" n1 status

log "a vm-admin scoped by owner alice: creates and deletes alice's VMs, not bob's"
on n1 hvctl acl add alice-admin --user "$ua" --role vm-admin --owner alice >/dev/null ||
	fail "acl add alice-admin"
wait_for 10 "alice-admin on n2" bash -c "$lab exec n2 -- hvctl acl list --json | grep -q alice-admin"
as "$ua" n2 vm create shop2 --vcpus 1 --memory 32M --disk "${luns[3]},bus=ide" --kernel "$guest" \
	--app shop --owner alice >/dev/null || fail "$ua cannot create a VM of alice"
denied_for "vm.create needs vm-admin on vm crm2" "vm-admin of alice: create a VM of bob" "$ua" n2 \
	vm create crm2 --vcpus 1 --memory 32M --disk "${luns[3]},bus=ide" --owner bob
denied_for "vm.delete needs vm-admin on vm crm1" "vm-admin of alice: delete crm1" "$ua" n2 vm delete crm1
as "$ua" n1 vm delete shop2 >/dev/null || fail "$ua cannot delete alice's shop2"
[ "$(jget "$(on n1 hvctl vm list --json)" '" ".join(sorted(v["name"] for v in j))')" = "crm1 shop1" ] ||
	fail "VMs after the vm-admin: $(on n1 hvctl vm list --json)"

log "every change asked for is in every node's audit log: command, object, who, result"
audit_ok() { # HOST
	python3 -c '
import json, sys
a, ug, ua = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
got = {(r["who"]["user"], r["cmd"], r["object"], r["result"]) for r in a}
need = {("nobody", "vm.stop", "crm1", "denied"), ("daemon", "vm.stop", "crm1", "denied"),
        ("daemon", "rule.add", "x", "denied"), ("daemon", "vm.migrate", "crm1", "denied"),
        (ug, "vm.stop", "crm1", "denied"), (ua, "vm.create", "crm2", "denied"),
        (ua, "vm.delete", "crm1", "denied"),
        ("daemon", "vm.start", "shop1", "ok"), ("daemon", "vm.migrate", "shop1", "ok"),
        (ug, "vm.pause", "shop1", "ok"), (ug, "vm.resume", "shop1", "ok"),
        (ua, "vm.create", "shop2", "ok"), (ua, "vm.delete", "shop2", "ok"),
        ("daemon", "vm.shutdown", "shop1", "refused"),
        ("root", "acl.add", "grp-ops", "ok")}
missing = need - got
if missing:
    sys.exit("missing: %s" % sorted(missing))
if [r for r in a if r["cmd"] == "vm.want"]:
    sys.exit("allowed changes recorded as vm.want, not their command")
r = [r for r in a if r["cmd"] == "vm.shutdown" and r["result"] == "refused"][0]
if "not here" not in r.get("reason", ""):
    sys.exit("the refused shutdown has no reason: %s" % r)
r = [r for r in a if r["cmd"] == "vm.pause"][0]
if r["who"]["role"] != "operator":
    sys.exit("pause by a group member: %s" % r)
r = [r for r in a if r["cmd"] == "vm.migrate" and r["object"] == "crm1"][0]
if "vm.migrate needs operator on vm crm1" not in r.get("reason", ""):
    sys.exit("the denied migration says: %s" % r)' "$(on "$1" hvctl audit --json)" "$ug" "$ua"
}
for h in n1 n2; do
	for _ in $(seq 20); do audit_ok "$h" >/dev/null 2>&1 && break; sleep 0.5; done
	audit_ok "$h" || fail "$h audit log: $(on "$h" hvctl audit --json)"
	log "ok: $h: the audit log has every change"
done
log "hvctl audit --limit: the newest records, and a note that older ones were left out"
a=$(on n1 hvctl audit --json --limit 3 2>/tmp/audit-note.$$) || fail "audit --limit 3"
note=$(cat /tmp/audit-note.$$); rm -f /tmp/audit-note.$$
[ "$(jget "$a" 'len(j)')" = 3 ] || fail "audit --limit 3 gave $(jget "$a" 'len(j)') records"
[ "$(jget "$a" 'j[-1]')" = "$(jget "$(on n1 hvctl audit --json)" 'j[-1]')" ] || fail "audit --limit 3: not the newest"
grep -q "older records left out (3 shown)" <<<"$note" || fail "audit --limit 3: no note ($note)"
log "security report, as a viewer: concrete findings"
crm_node=$(jget "$(on n1 hvctl vm show crm1 --json)" 'j["node"]')
on n1 hvctl vm create anon1 --vcpus 1 --memory 32M --disk "${luns[2]},bus=ide" --kernel "$guest" \
	--allow "$crm_node" >/dev/null
on n1 hvctl vm start anon1 >/dev/null
on n1 hvctl rule add anti-affinity spread --vms crm1,anon1 --soft >/dev/null
rep=$(as nobody n2 security report --json) || fail "viewer: security report failed"
python3 -c '
import json, sys
r, crm_node = json.loads(sys.argv[1]), sys.argv[2]
f = {(x["check"], x["severity"], x["object"]): x["detail"] for x in r["findings"]}
def want(key, text):
    if text not in f.get(key, ""):
        sys.exit("missing %s containing %r in %s" % (key, text, r["findings"]))
want(("owner-contact", "warning", "anon1"), "no owner and no contact")
want(("owner-contact", "warning", "shop1"), "no contact")
want(("rules", "warning", "spread"), "soft anti-affinity broken: crm1 and anon1 both run on " + crm_node)
want(("fencing", "warning", "n1"), "storage fencing only (built-in)")
c = r["checks"]
for ok in ("clearance", "corosync-crypto", "migration-keys", "storage-reservations"):
    if c[ok] != "ok":
        sys.exit("check %s: %s, findings %s" % (ok, c[ok], r["findings"]))
if r["corosync"] != {"crypto_cipher": "aes256", "crypto_hash": "sha256"}:
    sys.exit("corosync crypto: %s" % r["corosync"])
hosts = {h["name"]: h for h in r["hosts"]}
if sorted(hosts) != ["n1", "n2"] or hosts[crm_node]["effective_classification"] is None:
    sys.exit("hosts: %s" % r["hosts"])' "$rep" "$crm_node" || fail "security report: $rep"
out=$(as nobody n1 security report) || fail "viewer: security report (text) failed"
grep -q "^Corosync without encryption: OK" <<<"$out" || fail "security report text: $out"
grep -Eq "^ +warning +spread +soft anti-affinity broken" <<<"$out" || fail "security report text: $out"
printf "%s\n" "$out"
log "ok: security report: $(tail -n 1 <<<"$out")"

log "inventory, as a viewer: VMs with node, owner, app; hosts with effective classification"
inv=$(as nobody n2 inventory --json) || fail "viewer: inventory failed"
python3 -c '
import json, sys
inv, crm_node = json.loads(sys.argv[1]), sys.argv[2]
vms = {v["name"]: v for v in inv["vms"]}
keys = ["name", "node", "state", "owner", "contact", "app", "tier", "classification", "priority"]
if sorted(vms) != ["anon1", "crm1", "shop1"] or any(list(v) != keys for v in vms.values()):
    sys.exit("vms: %s" % inv["vms"])
want = {"crm1": (crm_node, "running", "bob", "crm", "confidential"),
        "anon1": (crm_node, "running", "", "", "public")}
for name, w in want.items():
    v = vms[name]
    if (v["node"], v["state"], v["owner"], v["app"], v["classification"]) != w:
        sys.exit("%s: %s, expected %s" % (name, v, w))
if vms["crm1"]["contact"] != "Bob \"B\" Smith, +1 555" or vms["shop1"]["owner"] != "alice" or \
        vms["shop1"]["app"] != "shop" or vms["shop1"]["node"] not in ("n1", "n2"):
    sys.exit("vms: %s" % inv["vms"])
order = ["public", "internal", "confidential", "secret"]
hosts = {h["name"]: h for h in inv["hosts"]}
if sorted(hosts) != ["n1", "n2"] or hosts[crm_node]["effective_classification"] != "confidential":
    sys.exit("hosts: %s" % inv["hosts"])
for name, h in hosts.items():
    on = [v["classification"] for v in vms.values() if v["node"] == name]
    eff = max(on, key=order.index) if on else None
    if h["effective_classification"] != eff or h["vms"] != len(on) or \
            h["clearance"] != "confidential" or h["state"] != "online":
        sys.exit("host %s: %s, its VMs: %s" % (name, h, on))' "$inv" "$crm_node" ||
	fail "inventory --json: $inv"
log "ok: inventory --json: $inv"

log "inventory --csv and --csv --hosts read back by python's csv module as the JSON says"
csv_is() { # PART: hvctl's CSV on stdin, read by python's csv module, holds the JSON's PART
	python3 -c '
import csv, io, json, sys
raw = sys.stdin.buffer.read()
objs = json.loads(sys.argv[1])[sys.argv[2]]
if not raw.endswith(b"\r\n"):
    sys.exit("records do not end with CRLF: %r" % raw)
rows = list(csv.DictReader(io.StringIO(raw.decode(), newline=""), strict=True))
want = [{k: "" if v is None else str(v) for k, v in o.items()} for o in objs]
if rows != want:
    sys.exit("%r read as %s, expected %s" % (raw, rows, want))
if sys.argv[2] == "vms" and b"\"Bob \"\"B\"\" Smith, +1 555\"" not in raw:
    sys.exit("the contact of crm1 is not quoted: %r" % raw)' "$inv" "$1"
}
as nobody n2 inventory --csv | csv_is vms || fail "inventory --csv"
as nobody n2 inventory --csv --hosts | csv_is hosts || fail "inventory --csv --hosts"
log "ok: inventory --csv, --csv --hosts"
out=$(as nobody n2 inventory) || fail "viewer: inventory (text) failed"
grep -q "^VMs: 3$" <<<"$out" && grep -q "^Hosts: 2$" <<<"$out" || fail "inventory text: $out"
printf "%s\n" "$out"

log "vm list filters: --app, --owner, --node (exact, combined); an unknown node is an error"
names() { jget "$(as nobody n2 vm list --json "$@")" '" ".join(sorted(v["name"] for v in j))'; }
[ "$(names --app shop)" = shop1 ] || fail "vm list --app shop: $(names --app shop)"
[ "$(names --app crm --owner bob)" = crm1 ] || fail "vm list --app crm --owner bob"
[ "$(names --app crm --owner alice)" = "" ] || fail "vm list --app crm --owner alice"
[ "$(names --app sho)" = "" ] || fail "vm list --app sho: not an exact match"
[ "$(names --owner '')" = anon1 ] || fail "vm list --owner '': $(names --owner '')"
want=$(jget "$inv" '" ".join(sorted(v["name"] for v in j["vms"] if v["node"] == "'"$crm_node"'"))')
got=$(names --node "$crm_node")
[ "$got" = "$want" ] || fail "vm list --node $crm_node: '$got', expected '$want'"
set +e
out=$(as nobody n2 vm list --node nosuch --json 2>&1); rc=$?
set -e
[ $rc -eq 1 ] && grep -q "node nosuch does not exist" <<<"$out" ||
	fail "vm list --node nosuch: exit $rc ($out)"
log "ok: vm list --node nosuch: $out"
echo PASS
