# Helpers for the integration tests (sourced). Run from the repo top.
# A test prints "FAIL: <what>" and exits 1 on failure, exits 77 to skip.

top=$(pwd)
lab=$top/tests/lab/lab
export PATH=$top:$PATH

fail() {
	echo "FAIL: $*"
	exit 1
}

log() {
	echo "[$(date +%T)] $*"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds.
wait_for() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + secs))
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for: $what"
		sleep 0.5
	done
	log "ok: $what"
}

# hvstatus HOST: hvctl status --json on HOST
hvstatus() {
	"$lab" exec "$1" -- hvctl status --json
}

# jget JSON EXPR: a python expression over the parsed JSON `j`
jget() {
	python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# Start a lab and make sure it goes away whatever happens. The lab gets an id of its own
# (LAB_ID, exported) unless the caller chose one: every later `lab` command of this test
# addresses it, never the machine's "current" lab, which another lab may have become.
lab_up() {
	export LAB_ID=${LAB_ID:-it$$}
	trap 'lab_cleanup' EXIT
	"$lab" up "$@" || fail "lab up $*"
}

# wait_online N [HOST]: until HOST (default n1) sees N nodes online in the cluster state
wait_online() {
	local n=$1 host=${2:-n1}
	wait_for 60 "$n nodes online (seen from $host)" bash -c \
		"$lab exec $host -- hvctl status --json | python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if sum(1 for x in j[\"nodes\"] if x[\"state\"] == \"online\") >= $n else 1)'"
}

lab_cleanup() {
	local rc=$? dir
	# only a lab dir that exists: with the lab gone, "$(lab path n1)/.." would be "/.."
	if [ $rc -ne 0 ] && [ -n "${LAB_KEEP_LOGS:-}" ] && dir=$("$lab" path 2>/dev/null) &&
		[ -n "$dir" ] && [ -f "$dir/lab.env" ]; then
		mkdir -p "$top/tests/results/lab-logs"
		cp -r "$dir" "$top/tests/results/lab-logs/" 2>/dev/null || true
	fi
	"$lab" down >/dev/null 2>&1 || "$lab" down
	exit $rc
}
