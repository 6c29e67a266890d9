#!/usr/bin/env bash
# make demo's script, as CI runs it, so that it cannot rot: it must end with "demo: OK"
# and exit 0 (each of its steps checks what it says), its summary must list every step,
# and it must leave no lab behind.
set -euo pipefail
. tests/it/lib.sh

export LAB_ID=dm$$
trap '"$lab" down >/dev/null 2>&1 || true' EXIT
start=$SECONDS
out=$(tests/lab/demo 2>&1) || { echo "$out" | tail -n 60; fail "the demo failed (exit $?)"; }
echo "$out"
grep -q '^demo: OK' <<<"$out" || fail "no 'demo: OK'"
for want in "VMs placed, hard rules kept" "live migration app1" "drain " "resume " \
	"power-off of " "disk records checked" "the whole demo"; do
	grep -q "$want" <<<"$out" || fail "the summary has no line '$want'"
done
"$lab" list 2>/dev/null | grep -q "^$LAB_ID " && fail "the demo left its lab $LAB_ID behind"
log "the demo took $((SECONDS - start)) s"
echo PASS
