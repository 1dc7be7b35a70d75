#!/usr/bin/env bash
# Run every Go fuzz target of the module for a fixed time, one after the
# other, and print a table: target, fuzzing time, executions (the inputs
# tried), new crashers; then the number of targets and of executions in
# all (README's Reliability table: `scripts/fuzz.sh 60`).
#
#   scripts/fuzz.sh [SECONDS]          # default 30 s per target
#
# Environment:
#   FUZZ_ONLY=REGEXP    run only the targets whose "package.FuzzName" matches
#   FUZZ_MINIMIZE=DUR   -fuzzminimizetime (default 5s): how long each new
#                       input is minimised. Go's default, 60s, can take a
#                       short run's whole budget on inputs of kilobytes (a
#                       checkpoint), and those executions are not counted.
#   GO=go               the go command
#
# Targets are found by grepping *_test.go files for "func FuzzXxx(". A
# crasher is written by go test into <package>/testdata/fuzz/<FuzzName>/,
# where it stays as a regression case that plain `go test` runs. The exit
# status is 1 when any target found a crasher or failed to run.
set -u

secs=${1:-30}
case $secs in '' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac
GO=${GO:-go}
minimize=${FUZZ_MINIMIZE:-5s}
cd "$(dirname "$0")/.." || exit 2

logdir=$(mktemp -d "${TMPDIR:-/tmp}/pad-fuzz.XXXXXX") || exit 2
echo "fuzzing ${secs}s per target; logs in $logdir" >&2

# "dir name" pairs, sorted.
targets=$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . |
	while read -r file; do
		dir=$(dirname "$file")
		sed -n -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$file" | while read -r name; do
			echo "$dir $name"
		done
	done | sort -u)

rows=()
status=0
total_execs=0
total_start=$(date +%s)
while read -r dir name; do
	[ -z "$dir" ] && continue
	label="${dir#./}.$name"
	if [ -n "${FUZZ_ONLY:-}" ] && ! [[ $label =~ $FUZZ_ONLY ]]; then
		continue
	fi
	corpus="$dir/testdata/fuzz/$name"
	before=$(find "$corpus" -type f 2>/dev/null | wc -l)
	log="$logdir/${label//\//_}.log"
	echo "== $label" >&2
	start=$(date +%s)
	(cd "$dir" && "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" -fuzzminimizetime "$minimize" .) >"$log" 2>&1
	rc=$?
	wall=$(($(date +%s) - start))
	# The last progress line: "fuzz: elapsed: 61s, execs: 123456 (2000/sec), …"
	last=$(grep -E '^fuzz: elapsed: ' "$log" | tail -n 1)
	elapsed=$(sed -n -E 's/^fuzz: elapsed: ([0-9hms.]+),.*/\1/p' <<<"$last")
	execs=$(sed -n -E 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	interesting=$(sed -n -E 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	after=$(find "$corpus" -type f 2>/dev/null | wc -l)
	crashers=$((after - before))
	result=ok
	if [ "$rc" -ne 0 ]; then
		status=1
		if [ "$crashers" -gt 0 ]; then
			result="CRASHER: $(grep -m1 -E 'Failing input written to' "$log" | sed 's/.*written to //')"
		else
			result="FAILED (exit $rc, see $log)"
		fi
	fi
	total_execs=$((total_execs + ${execs:-0}))
	rows+=("$(printf '%-42s %8s %6s %12s %11s %8s  %s' "$label" "${elapsed:--}" "${wall}s" "${execs:--}" "${interesting:--}" "$crashers" "$result")")
done <<<"$targets"

echo
printf '%-42s %8s %6s %12s %11s %8s  %s\n' target fuzzing wall execs interesting crashers result
for r in "${rows[@]}"; do
	echo "$r"
done
echo "total: ${#rows[@]} targets, $total_execs executions, $(($(date +%s) - total_start))s; logs in $logdir"
exit $status
