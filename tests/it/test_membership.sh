#!/usr/bin/env bash
# hvnoded on real corosync in a 3-host lab: membership, quorum, leader,
# across a power-off, a partition, a heal, the leader's death and a
# corosync restart; hostile IPC clients; hvctl's exit codes.
set -euo pipefail
. tests/it/lib.sh

# members HOST: "quorate leader id,id,..." as HOST's hvctl reports it
view() {
	local j
	j=$(hvstatus "$1") || return 1
	jget "$j" '"%s %s %s" % (j["quorate"], j["leader"], ",".join(str(m["id"]) for m in j["members"]))'
}

check_view() { # HOST WANT SECONDS
	local host=$1 want=$2 secs=${3:-30} got deadline=$((SECONDS + ${3:-30}))
	while :; do
		got=$(view "$host" 2>/dev/null || echo "unreachable")
		[ "$got" = "$want" ] && { log "ok: $host sees '$want'"; return 0; }
		[ $SECONDS -lt $deadline ] || fail "$host: expected '$want' (quorate leader members), got '$got' after ${secs}s"
		sleep 0.5
	done
}

lab_up 3

log "every host: 3 members, quorate, the same leader"
for h in n1 n2 n3; do check_view $h "True 1 1,2,3" 30; done
j=$(hvstatus n2)
[ "$(jget "$j" 'j["node"]["name"]')" = n2 ] || fail "n2 reports node name $(jget "$j" 'j["node"]')"
[ "$(jget "$j" 'j["node"]["id"]')" = 2 ] || fail "n2 reports node id $(jget "$j" 'j["node"]')"
[ "$(jget "$j" '[m["name"] for m in j["members"]]')" = "['n1', 'n2', 'n3']" ] ||
	fail "member names: $(jget "$j" 'j["members"]')"
[ "$(jget "$j" 'j["cluster"]')" = "$(jget "$(hvstatus n1)" 'j["cluster"]')" ] || fail "cluster names differ"
"$lab" exec n1 -- hvctl status | grep "^Quorate: *yes" >/dev/null || fail "human status of n1 does not say Quorate: yes"

log "hostile IPC clients are answered with an error and dropped; hvnoded goes on"
for mode in short badid notjson notobject nocmd badargs oversize unknown; do
	out=$("$lab" exec n1 -- tests/it/ipc-garbage hvnoded $mode) || fail "garbage '$mode': $out"
done
check_view n1 "True 1 1,2,3" 5
grep -q "dropping client pid .*: malformed request" "$("$lab" path n1)/log/hvnoded.log" ||
	fail "n1's log does not record the dropped clients"

log "hvctl exit codes: usage 2, unreachable 3"
set +e
"$lab" exec n1 -- hvctl bogus-command >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "hvctl bogus-command exited $rc, want 2"
"$lab" exec n1 -- hvctl status --bogus >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "hvctl status --bogus exited $rc, want 2"
msg=$("$lab" exec n1 -- hvctl --ipc nosuchservice status 2>&1); rc=$?
set -e
[ $rc -eq 3 ] || fail "hvctl to a missing daemon exited $rc, want 3"
echo "$msg" | grep "nosuchservice" >/dev/null || fail "unreachable message does not name the socket: $msg"

log "power off n3: n1 and n2 keep quorum with 2 members"
"$lab" kill n3
check_view n1 "True 1 1,2" 30
check_view n2 "True 1 1,2" 30

log "power n3 on again"
"$lab" start n3
for h in n1 n2 n3; do check_view $h "True 1 1,2,3" 60; done

log "partition n2: it loses quorum, n1 and n3 keep it"
"$lab" partition n2
check_view n2 "False None 2" 30
check_view n1 "True 1 1,3" 30
check_view n3 "True 1 1,3" 30

log "heal n2: 3 members again"
"$lab" heal n2
for h in n1 n2 n3; do check_view $h "True 1 1,2,3" 60; done

log "kill the leader n1: n2 leads everywhere"
"$lab" kill n1
check_view n2 "True 2 2,3" 30
check_view n3 "True 2 2,3" 30
"$lab" start n1
for h in n1 n2 n3; do check_view $h "True 1 1,2,3" 60; done

log "restart corosync under n3's hvnoded: it reports unavailable, then reconnects"
n3log=$("$lab" path n3)/log/hvnoded.log
"$lab" exec n3 -- pkill -KILL -x corosync
wait_for 20 "n3 reports corosync unavailable" \
	bash -c "$lab exec n3 -- hvctl status --json | grep -q '\"corosync\": \"unavailable\"'"
"$lab" exec n3 -- hvctl status | grep "^Corosync: *unavailable" >/dev/null || fail "human status does not say corosync unavailable"
"$lab" exec n3 -- corosync || fail "cannot start corosync again on n3"
for h in n1 n2 n3; do check_view $h "True 1 1,2,3" 60; done
grep -q "corosync unavailable" "$n3log" || fail "n3's log does not say corosync unavailable"

log "SIGTERM stops hvnoded cleanly"
"$lab" exec n3 -- pkill -TERM -x hvnoded
wait_for 20 "hvnoded on n3 gone" bash -c "! $lab exec n3 -- pgrep -x hvnoded"
grep -q "hvnoded stopped" "$n3log" || fail "n3's log has no 'hvnoded stopped'"
check_view n1 "True 1 1,2" 30
echo PASS
