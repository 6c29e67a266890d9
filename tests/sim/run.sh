#!/usr/bin/env bash
# Run the scenario simulations: every tests/sim/scenarios/<name>/script (or
# only the names given), each compared line by line with its expected log.
#
#   tests/sim/run.sh [NAME...]           exit 0 when every scenario passes
#   UPDATE=1 tests/sim/run.sh [NAME...]  rewrite the expected logs (for a
#                                        reviewed change; a scenario whose run
#                                        fails is never written)
#   HVSIM=path                           the simulator (default tests/sim/hvsim)
#
# A scenario passes when hvsim exits 0 (every expectation held, no invariant
# broken) and its log equals the expected one. The produced logs are kept in
# tests/results/sim/ for a look after a failure.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
sim=${HVSIM:-tests/sim/hvsim}
scen=tests/sim/scenarios
out=tests/results/sim
update=${UPDATE:-0}

if [ ! -x "$sim" ]; then
	echo "run.sh: $sim not found; build it first (make tests/sim/hvsim)" >&2
	exit 2
fi
mkdir -p "$out"

if [ $# -gt 0 ]; then
	names=("$@")
else
	names=()
	for d in "$scen"/*/; do
		names+=("$(basename "$d")")
	done
fi

passed=0
failed=0
failures=()
for name in "${names[@]}"; do
	dir=$scen/$name
	log=$out/$name.log
	if [ ! -f "$dir/script" ]; then
		echo "run.sh: no scenario $name ($dir/script)" >&2
		exit 2
	fi
	rm -f "$out/$name.diff"
	"$sim" "$dir/script" >"$log" 2>"$out/$name.err"
	rc=$?
	if [ $rc -ne 0 ]; then
		failed=$((failed + 1))
		failures+=("$name")
		printf 'FAIL  %-44s (hvsim exit %d)\n' "$name" $rc
		grep -h 'FAIL:\|INVARIANT' "$log" | sed 's/^/      | /'
		sed 's/^/      | /' "$out/$name.err"
		continue
	fi
	if [ "$update" = 1 ]; then
		if ! cmp -s "$log" "$dir/expected"; then
			cp "$log" "$dir/expected"
			printf 'UPDATED %s\n' "$name"
		else
			printf 'SAME  %s\n' "$name"
		fi
		passed=$((passed + 1))
		continue
	fi
	if [ ! -f "$dir/expected" ]; then
		failed=$((failed + 1))
		failures+=("$name")
		printf 'FAIL  %-44s (no expected log: review %s, then UPDATE=1)\n' "$name" "$log"
		continue
	fi
	if ! diff -u --label "$dir/expected" --label "$log" "$dir/expected" "$log" >"$out/$name.diff"; then
		failed=$((failed + 1))
		failures+=("$name")
		printf 'FAIL  %-44s (log differs from expected)\n' "$name"
		sed 's/^/      /' "$out/$name.diff" | head -n 60
		continue
	fi
	passed=$((passed + 1))
	printf 'PASS  %s\n' "$name"
done

echo "sim: $passed passed, $failed failed${failures[*]:+ (${failures[*]})}"
[ $failed -eq 0 ]
