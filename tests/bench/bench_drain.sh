#!/usr/bin/env bash
# Drain benchmark in a 3-host lab: 6 test guests (32 MiB, committing every 100 ms) run on
# n1; `hvctl node drain n1 --wait` moves them to n2 and n3, then `hvctl node resume n1`
# brings them back (failback immediate). One run per case; prints a table; never a
# pass/fail test (the exit status is non-zero only when something did not run).
#
#   case      the drain policy of their priority (settings drain_medium) and
#             migrate_max_per_node (migrations in flight per node at once)
#   drain s   node drain --wait: from the request to nothing left on n1 (hvctl's own
#             elapsed_ms; it polls every 500 ms, so up to 0.5 s of it is polling)
#   per VM    average total_ms of the VMs' migrations (request -> running on the target);
#             for stop (a cold move) the time to running again elsewhere is in drain s
#   max down  the longest pause of a guest: QEMU's downtime figure (live: the final
#             stop-and-copy; quick: pause to release on the source); stop: "boot"
#   failback  node resume n1 -> every VM back on n1 and running (live migrations)
#
#   tests/bench/bench_drain.sh        files in tests/results/bench-drain/
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/it/lib.sh

guest=$top/tests/guest/hvguest.elf
out=$top/tests/results/bench-drain
nvm=6
rm -rf "$out"
mkdir -p "$out"

export LAB_ID=bd$$
lab_up 3 --luns $nvm >/dev/null
wait_online 3 >/dev/null
mapfile -t luns < <("$lab" luns)
on() { local h=$1; shift; "$lab" exec "$h" -- "$@"; }
ms() { date +%s%3N; }
vms_json() { on n2 hvctl vm list --json; }
# every VM started on node $1 (or, with $1 = !n1, started anywhere but n1)
all_on() {
	vms_json | python3 -c '
import json, sys
want = sys.argv[1]
vms = json.load(sys.stdin)
ok = all(v["ha_state"] == "started" and not v.get("migration") and
         (v["assigned_node"] != want[1:] if want.startswith("!") else v["assigned_node"] == want)
         for v in vms)
sys.exit(0 if ok else 1)' "$1"
}

for i in $(seq 0 $((nvm - 1))); do
	on n1 hvctl vm create "b$i" --vcpus 1 --memory 32M --disk "${luns[$i]},bus=ide" \
		--kernel "$guest" --append interval_ms=100 --prefer n1 --failback immediate \
		>/dev/null || fail "create b$i"
	on n1 hvctl vm start "b$i" >/dev/null || fail "start b$i"
done
wait_for 60 "every VM on n1" all_on n1 >/dev/null

rows=()
run_case() { # POLICY MAX
	local policy=$1 max=$2 t0 t1 drain_ms res stats failback
	on n1 hvctl settings "drain_medium=$policy" "migrate_max_per_node=$max" >/dev/null ||
		fail "settings"
	t0=$(ms)
	res=$(on n2 hvctl node drain n1 --wait --json) || fail "drain ($policy, $max): $res"
	echo "$res" >"$out/drain-$policy-$max.json"
	wait_for 120 "every VM running off n1" all_on '!n1' >/dev/null
	t1=$(ms)
	drain_ms=$((t1 - t0))
	stats=$(vms_json | python3 -c '
import json, sys
vms = json.load(sys.stdin)
lm = [v.get("last_migration") or {} for v in vms]
mine = [m for m in lm if m.get("cause") == "drain" and m.get("result") == "completed"]
if sys.argv[1] == "stop" or not mine:
    print("- boot")
else:
    print("%.2f %d" % (sum(m["total_ms"] for m in mine) / len(mine) / 1000,
                       max(m["downtime_ms"] for m in mine)))' "$policy")
	vms_json >"$out/vms-$policy-$max.json"
	t0=$(ms)
	on n2 hvctl node resume n1 >/dev/null || fail "resume"
	wait_for 180 "every VM back on n1" all_on n1 >/dev/null
	t1=$(ms)
	failback=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
	read -r per down <<<"$stats"
	rows+=("$(printf '%-14s %4s %9s %8s %9s %9s' "$policy" "$max" \
		"$(awk -v a="$drain_ms" 'BEGIN { printf "%.1f", a / 1000 }')" "$per" "$down" "$failback")")
}

for c in live:1 live:2 live:4 quick:2 stop:2; do
	run_case "${c%:*}" "${c#*:}"
done

echo
echo "Drain of $nvm test guests (32 MiB, TCG) off n1 to n2 and n3, then resume (failback immediate):"
printf '%-14s %4s %9s %8s %9s %9s\n' "case" "max" "drain s" "per VM" "max down" "failback"
printf '%-14s %4s %9s %8s %9s %9s\n' "(drain_medium)" "/node" "" "s" "ms" "s"
for r in "${rows[@]}"; do echo "$r"; done
echo
echo "files: $out"
