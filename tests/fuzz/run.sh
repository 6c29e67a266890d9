#!/usr/bin/env bash
# Run libFuzzer harnesses for SECONDS each: run.sh SECONDS tests/fuzz/fuzz_NAME...
#
# Each runs on a copy of tests/fuzz/corpus/NAME in /tmp (what it finds stays out of the
# repository), logs to tests/results/fuzz-NAME.log and writes a crashing input to
# tests/results/fuzz-artifacts/NAME-crash-... Ends with one line "N passed, N failed";
# exits 1 when any harness failed, after printing its reproducer.
#
# Env: FUZZ_ARGS adds libFuzzer options (e.g. FUZZ_ARGS=-jobs=2).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
secs=$1
shift
results=tests/results
artifacts=$results/fuzz-artifacts
mkdir -p "$results" "$artifacts"
passed=0
failed=0

for bin in "$@"; do
	name=${bin##*/fuzz_}
	log=$results/fuzz-$name.log
	work=$(mktemp -d "/tmp/hvfuzz-$name.XXXXXX") || exit 1
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -r "tests/fuzz/corpus/$name/." "$work/"
	fi
	start=$(date +%s)
	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
	"$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$artifacts/$name-" ${FUZZ_ARGS:-} "$work" >"$log" 2>&1
	rc=$?
	end=$(date +%s)
	rm -rf "$work"
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS  fuzz-%-35s %4ss %10s runs\n' "$name" $((end - start)) "${runs:-?}"
		continue
	fi
	failed=$((failed + 1))
	printf 'FAIL  fuzz-%-35s %4ss (exit %d), log %s\n' "$name" $((end - start)) $rc "$log"
	grep -E '^==[0-9]+==ERROR|runtime error|^SUMMARY|^check failed' "$log" | head -n 5 | cut -c 1-300 | sed 's/^/      | /'
	repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	if [ -n "$repro" ]; then
		printf '      reproducer: %s\n      rerun:      %s %s\n' "$repro" "$bin" "$repro"
	fi
done
printf 'fuzz: %d passed, %d failed\n' $passed $failed
[ $failed -eq 0 ]
