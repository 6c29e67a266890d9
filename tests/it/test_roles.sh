#!/usr/bin/env bash
# Roles and audit in a 2-host lab: hvctl run as unprivileged users (setpriv) against the real
# hvnoded. Nobody without a binding may do anything; a viewer reads but cannot stop; an
# operator scoped to app shop starts a shop VM but not another app's, and cannot add rules;
# every refusal is in the audit log of every node, with who and why. The viewer's security
# report names what an auditor must hear of: VMs without owner or contact, a soft rule broken.
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
	--app crm --owner bob >/dev/null
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
echo PASS
