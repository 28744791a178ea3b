#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# cowtable on other CPUs: for each architecture, Concurrency Kit built for it
# from Debian's source package (scripts/ck-cross.sh), the library, its tests
# and the torture cross-built with Debian's cross toolchain (the cross-*
# presets, cmake/toolchains/), and CTest running them under qemu-user; then
# the torture for 10^6 operations and more in four configurations.
#
#   sh scripts/cross-test.sh [--full] [arch...]
#       arch: aarch64 (or arm64), riscv64, s390x; all three by default.
#       Without --full, the test command's cross stage: every test of
#       tests/ (the model, error, allocation-failure, range, concurrency and
#       linearizability-checker tests, the freestanding object and their
#       broken controls), every torture and linearizability mix of stress/,
#       and four of its broken controls with the four of lin mode.  With
#       --full, every target and test of the preset, all the controls.
#
# What this shows and does not: docs/testing.md, "Other architectures".
# An architecture whose cross compiler or qemu-user is not installed
# (scripts/setup.sh installs them) is reported SKIPPED by name; the script
# exits 77 if none ran, 1 if any failed, 0 if all that ran passed.
set -u
cd "$(dirname "$0")/.." || exit 1
full=0
if [ "${1:-}" = "--full" ]; then
	full=1
	shift
fi
arches=${*:-"aarch64 riscv64 s390x"}
jobs=2

# The torture's controls built and run here (besides lin mode's four): a
# holder's references dropped, a count raised from zero, a late free, a mark
# that overwrites a count (the last two are lin mode's too).  Not NO_GRACE:
# its use after free is reported as an invariant in most runs but is a
# segmentation fault in about one run of ten, on the host as under qemu, and
# CTest fails a crashed control whatever it printed.
controls="DROP_ALL INC_FROM_ZERO LATE_FREE MARK_OVERWRITE"

ran=0
failed=0
report=""
note() {
	report="$report
  $1"
	echo "cross-test: $1"
}

for a in $arches; do
	case "$a" in
	arm64 | aarch64) arch=aarch64 preset=cross-arm64 machine=AArch64 ;;
	riscv64) arch=riscv64 preset=cross-riscv64 machine=RISC-V ;;
	s390x) arch=s390x preset=cross-s390x machine="S/390" ;;
	*)
		note "$a: unknown architecture (aarch64, riscv64, s390x): FAILED"
		failed=$((failed + 1))
		continue
		;;
	esac
	triple=$arch-linux-gnu
	emu="qemu-$arch-static -L /usr/$triple"
	missing=""
	for t in "$triple-gcc" "$triple-g++" "qemu-$arch-static"; do
		command -v "$t" >/dev/null || missing="$missing $t"
	done
	if [ -n "$missing" ]; then
		note "$arch: SKIPPED, not installed:$missing (scripts/setup.sh installs them)"
		continue
	fi
	ran=$((ran + 1))
	start=$(date +%s)
	dir=build/$preset
	log=build/$preset.log
	echo "=== cross $arch ($preset, logs in $log)"
	ok=1
	sh scripts/ck-cross.sh "$arch" || ok=0
	if [ $ok -eq 1 ]; then
		cmake --preset "$preset" >"$log" 2>&1 || ok=0
	fi
	if [ $ok -eq 1 ]; then
		if [ $full -eq 1 ]; then
			cmake --build "$dir" -j $jobs >>"$log" 2>&1 || ok=0
		else
			targets="cowtable_torture cowtable_torture_inject cowtable_torture_tiny
				cowtable_torture_refs4"
			for c in $controls; do targets="$targets torture_broken_$c"; done
			# Everything in tests/, then the torture's builds.
			# shellcheck disable=SC2086
			cmake --build "$dir/tests" -j $jobs >>"$log" 2>&1 &&
				cmake --build "$dir" -j $jobs --target $targets >>"$log" 2>&1 || ok=0
		fi
		[ $ok -eq 1 ] || { tail -20 "$log"; echo "cross-test: $arch: build failed; see $log"; }
	fi
	# The binaries are the target's, not the host's (a toolchain file that
	# fell back to the host compiler would pass every test here).
	if [ $ok -eq 1 ]; then
		hdr=$(readelf -h "$dir/tests/test_model" 2>/dev/null)
		if ! echo "$hdr" | grep -q "Machine:.*$machine"; then
			echo "FAIL cross-test.sh: $dir/tests/test_model is not an $arch binary:"
			echo "$hdr" | grep -E 'Machine|Data'
			ok=0
		fi
		echo "cross-test: $arch: $(echo "$hdr" | sed -n 's/^ *Machine: *//p'), $(echo "$hdr" | sed -n 's/^ *Data: *//p')"
	fi
	if [ $ok -eq 1 ]; then
		if [ $full -eq 1 ]; then
			ctest --test-dir "$dir" -j $jobs --output-on-failure -E '^kernel_doc$' || ok=0
		else
			sel=$(echo "$controls" | tr ' ' '|')
			ctest --test-dir "$dir" -j $jobs --output-on-failure \
				-E '^(kernel_doc|control_torture_.*)$' || ok=0
			ctest --test-dir "$dir" -j $jobs --output-on-failure \
				-R "^control_torture_($sel)\$" || ok=0
		fi
	fi
	# The torture past CTest's short runs: each 4 threads x the operations
	# given a thread, 10^6 operations or more in every run.
	if [ $ok -eq 1 ]; then
		s=$dir/stress
		set -- \
			"cowtable_torture --mode anon --threads 4 --ops 1000000 --keys 4096 --hot 8 --hot-pct 50 --seed 41" \
			"cowtable_torture_inject --mode holder --threads 4 --ops 500000 --keys 4096 --hot 8 --hot-pct 50 --stall-ms 200 --alloc-fail 500 --seed 42" \
			"cowtable_torture_tiny --mode anon --threads 4 --ops 500000 --keys 64 --stride 64 --hot 4 --hot-pct 70 --mix 40:45:10:0:5 --seed 43" \
			"cowtable_torture_inject --mode anon --threads 4 --ops 250000 --keys 512 --hot 32 --hot-pct 70 --mix 30:30:10:0:10 --seed 44"
		for run in "$@"; do
			exe=${run%% *}
			echo "cross-test: $arch: $run"
			# shellcheck disable=SC2086
			out=$($emu "$s/$exe" ${run#* } --watchdog 60 2>&1)
			echo "$out" | tail -1
			echo "$out" | grep -q '^VERDICT: PASS' || {
				echo "$out" | grep FAIL | head -5
				ok=0
			}
		done
	fi
	secs=$(($(date +%s) - start))
	if [ $ok -eq 1 ]; then
		note "$arch: passed ($secs s)"
	else
		note "$arch: FAILED ($secs s)"
		failed=$((failed + 1))
	fi
done

echo "=== cross summary$report"
[ $failed -eq 0 ] || exit 1
[ $ran -gt 0 ] || exit 77
exit 0
