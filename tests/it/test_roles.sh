#!/usr/bin/env bash
# Roles and audit in a 2-host lab: hvctl run as unprivileged users (setpriv) against the real
# hvnoded. Nobody without a binding may do anything; a viewer reads but cannot stop; an
# operator scoped to app shop starts a shop VM but not another app's, and cannot add rules;
# every refusal is in the audit log of every node, with who and why. The viewer's security
# report names what an auditor must hear of: VMs without owner or contact, a soft rule broken.
# The viewer's inventory (JSON, and CSV as a spreadsheet reads it) lists every VM with its node,
# owner and app, and every host with its effective classification; vm list filters by app,
# owner and node, and names a node that does not exist.
set -euo pipefail
. tests/it/lib.sh

guest=$top/tests/guest/hvguest.elf
export LAB_ID=${LAB_ID:-ro$$}
lab_up 2 --luns 3
wait_online 2
mapfile -t luns < <("$lab" luns)
on() { local h=$1; shift; "$lab" exec "$h" -- "$@"; }
as() { # USER HOST hvctl-args...: run hvctl as USER
	local u=$1 h=$2
	shift 2
	on "$h" setpriv --reuid "$u" --regid "$(id -gn "$u")" --clear-groups "$top/hvctl" "$@"
}
denied() { # what USER HOST args...: must exit 1 with "permission denied"
	local what=$1 out rc
	shift
	set +e
	out=$(as "$@" 2>&1); rc=$?
	set -e
	[ $rc -eq 1 ] && grep -q "permission denied" <<<"$out" || fail "$what: exit $rc ($out)"
	log "ok: $what: $out"
}

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
[ "$(jget "$(on n1 hvctl vm show crm1 --json)" 'j["state"]')" = running ] || fail "crm1 disturbed"

log "the refusals are in every node's audit log, with who"
for h in n1 n2; do
	a=$(on "$h" hvctl audit --json)
	python3 -c '
import json, sys
a = json.loads(sys.argv[1])
denied = [r for r in a if r["result"] == "denied"]
need = {("nobody", "vm.stop", "crm1"), ("daemon", "vm.stop", "crm1"), ("daemon", "rule.add", "x")}
got = {(r["who"]["user"], r["cmd"], r["object"]) for r in denied}
missing = need - got
ok = [r for r in a if r["result"] == "ok" and r["cmd"] == "vm.want" and r["who"]["user"] == "daemon"]
sys.exit("missing denials: %s" % sorted(missing) if missing else (0 if ok else "no allowed start by daemon"))' "$a" ||
		fail "$h audit log: $a"
done
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
