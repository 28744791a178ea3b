#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The fuzzer (tests/fuzz/README.md, docs/testing.md "The fuzzer").
#
#   sh scripts/fuzz.sh [options] [seconds]
#       Builds the fuzz preset and fuzzes for the given time (default 60),
#       starting from a copy of the committed seed corpus in a scratch
#       directory.  Exits non-zero on a finding (a FAIL line, a sanitizer
#       report, a leak or a timeout); the input that caused it is saved in
#       the scratch directory as crash-*, leak-* or timeout-*.
#         --refs-max       the variant whose counts stop at 5 (EOVERFLOW often)
#         --work DIR       the scratch directory (default build/fuzz/run-<time>)
#         --jobs N         N fuzzing processes (libFuzzer -jobs=N -workers=N;
#                          default: fuzz in this process)
#         --update-corpus  afterwards, merge the inputs that reach new edges into
#                          tests/fuzz/corpus (otherwise it stays as committed)
#
#   sh scripts/fuzz.sh --coverage [DIR...]
#       Replays corpora (default: tests/fuzz/corpus) into the coverage build,
#       with both the normal and the count-limit-5 library, and prints the
#       line coverage of src/ (llvm-cov).
#
# Extra libFuzzer flags: COWTABLE_FUZZ_FLAGS="-use_value_profile=1".
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
build=$root/build/fuzz
corpus=$root/tests/fuzz/corpus

mode=fuzz
target=cowtable_fuzz
work=""
jobs=0
update=0
seconds=60
while [ $# -gt 0 ]; do
	case "$1" in
	--coverage) mode=coverage ;;
	--refs-max) target=cowtable_fuzz_refs5 ;;
	--work) work=$2; shift ;;
	--jobs) jobs=$2; shift ;;
	--update-corpus) update=1 ;;
	-h | --help) sed -n '3,26p' "$0"; exit 0 ;;
	-*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
	*) [ "$mode" = coverage ] && break; seconds=$1 ;;
	esac
	shift
done

# The LLVM tools that match the compiler (clang 14 on Debian bookworm).
llvm_tool() {
	v=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)
	if command -v "$1-$v" >/dev/null 2>&1; then echo "$1-$v"; else echo "$1"; fi
}

build() {
	cmake --preset fuzz >/dev/null
	cmake --build "$build" -j "${COWTABLE_JOBS:-2}" --target "$@" >/dev/null
}

options="-max_len=4096 -timeout=30 -rss_limit_mb=2048 -print_final_stats=1"

if [ "$mode" = coverage ]; then
	build cowtable_fuzz_cov cowtable_fuzz_refs5_cov
	[ $# -gt 0 ] || set -- "$corpus"
	out=$build/coverage
	rm -rf "$out"
	mkdir -p "$out"
	inputs=0
	for d in "$@"; do
		inputs=$((inputs + $(find "$d" -type f | wc -l)))
	done
	for bin in cowtable_fuzz_cov cowtable_fuzz_refs5_cov; do
		# -runs=0: run every input of the corpora once, fuzz nothing.
		LLVM_PROFILE_FILE="$out/$bin-%p.profraw" "$build/tests/fuzz/$bin" $options -runs=0 \
			"$@" >"$out/$bin.log" 2>&1 || {
			echo "fuzz.sh: $bin failed on the corpus: $out/$bin.log" >&2
			exit 1
		}
	done
	"$(llvm_tool llvm-profdata)" merge -sparse "$out"/*.profraw -o "$out/fuzz.profdata"
	"$(llvm_tool llvm-cov)" report "$build/tests/fuzz/cowtable_fuzz_cov" \
		-object "$build/tests/fuzz/cowtable_fuzz_refs5_cov" \
		-instr-profile="$out/fuzz.profdata" "$root/src/" | tee "$out/report.txt"
	"$(llvm_tool llvm-cov)" show "$build/tests/fuzz/cowtable_fuzz_cov" \
		-object "$build/tests/fuzz/cowtable_fuzz_refs5_cov" \
		-instr-profile="$out/fuzz.profdata" "$root/src/" >"$out/lines.txt"
	awk -v n="$inputs" '/^TOTAL/ { printf "line coverage of src/: %s (%d of %d lines) from %d inputs\n",
		$10, $8 - $9, $8, n }' "$out/report.txt"
	echo "annotated sources: $out/lines.txt (uncovered lines: grep -E '^ *[0-9]+\\| *0\\|')"
	exit 0
fi

build "$target"
[ -n "$work" ] || work=$build/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$work"
work=$(cd "$work" && pwd)
if [ ! -d "$work/corpus" ]; then
	cp -R "$corpus" "$work/corpus"
fi
echo "fuzz.sh: $target for $seconds s in $work (corpus: $(ls "$work/corpus" | wc -l) inputs)"
start=$(date +%s)
set +e
if [ "$jobs" -gt 0 ]; then
	# libFuzzer writes each job's output to fuzz-<n>.log in the current directory.
	(cd "$work" && "$build/tests/fuzz/$target" $options ${COWTABLE_FUZZ_FLAGS:-} \
		-max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" \
		-artifact_prefix="$work/" "$work/corpus") >"$work/fuzz.log" 2>&1
	rc=$?
	# The parent prints each job's log as the job ends; the jobs' logs stay in fuzz-<n>.log.
	tail -n 30 "$work/fuzz.log"
else
	"$build/tests/fuzz/$target" $options ${COWTABLE_FUZZ_FLAGS:-} -max_total_time="$seconds" \
		-artifact_prefix="$work/" "$work/corpus" >"$work/fuzz.log" 2>&1
	rc=$?
	tail -n 30 "$work/fuzz.log"
fi
set -e
# With -jobs the parent may exit 0 whatever the jobs found: look at the logs too.
findings=$(ls "$work" | grep -E '^(crash|leak|timeout|oom)-' || true)
# Inputs that took over 10 s of wall time (a loaded machine, usually): not findings.
slow=$(ls "$work" | grep -c '^slow-unit-' || true)
[ "$slow" -eq 0 ] || echo "fuzz.sh: $slow slow inputs saved as $work/slow-unit-* (not findings)"
if grep -qE 'FAIL fuzz_cowtable.c:[0-9]+: |ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' \
	"$work/fuzz.log"; then
	rc=1
fi
logs=$(ls "$work"/fuzz-*.log 2>/dev/null || echo "$work/fuzz.log")
# shellcheck disable=SC2086
execs=$(cat $logs | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{ s += $1 } END { print s + 0 }')
echo "fuzz.sh: $(($(date +%s) - start)) s, $execs executions, corpus $(ls "$work/corpus" | wc -l) inputs ($(du -sk "$work/corpus" | cut -f1) KiB) in $work/corpus"
if [ "$update" -eq 1 ]; then
	before=$(ls "$corpus" | wc -l)
	# Inputs that reach new edges (hit counts aside): a small corpus to commit.
	"$build/tests/fuzz/$target" $options -merge=1 -use_counters=0 "$corpus" "$work/corpus" \
		>"$work/merge.log" 2>&1
	echo "fuzz.sh: tests/fuzz/corpus: $before -> $(ls "$corpus" | wc -l) inputs"
fi
if [ $rc -ne 0 ] || [ -n "$findings" ]; then
	echo "fuzz.sh: FINDING (exit status $rc): $findings"
	echo "  reproduce: COWTABLE_FUZZ_TRACE=1 $build/tests/fuzz/$target $work/<file>"
	exit 1
fi
echo "fuzz.sh: no finding"
