#!/usr/bin/env bash
# Roles and audit in a 2-host lab: hvctl run as unprivileged users (setpriv) against the real
# hvnoded. Nobody without a binding may do anything; a viewer reads but cannot stop; an
# operator scoped to app shop starts a shop VM but not another app's, and cannot add rules;
# every refusal is in the audit log of every node, with who and why.
set -euo pipefail
. tests/it/lib.sh

guest=$top/tests/guest/hvguest.elf
export LAB_ID=${LAB_ID:-ro$$}
lab_up 2 --luns 2
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
echo PASS
