#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The test command: set up, then run every stage and report each one:
#   release  gcc -O2, warnings as errors: every test, broken controls,
#            kernel-doc, the freestanding object, the installed package,
#            one short pass of every benchmark
#   asan     gcc, AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan     clang, ThreadSanitizer (library atomics as __atomic builtins)
#   fuzz     clang, libFuzzer + ASan + UBSan: the fuzzer for 60 s against the
#            model, its regression inputs and its broken controls
#   genmc    model checking of the core under RC11 and IMM (docs/verification.md);
#            skipped, saying so, when GenMC is not installed
#   rust     the Rust crate's tests, with Debian's cargo (and PATH's)
#   debian   the Debian packages built, installed and used
#   kernel   the torture as a Linux module in a 2-CPU qemu guest, and its
#            broken control
#   cross    aarch64, riscv64 and s390x: cross-built with Debian's cross
#            toolchains, tests, controls and the torture under qemu-user
#            (scripts/cross-test.sh); an architecture whose toolchain is
#            missing is reported skipped by name
# A failed stage does not stop the others; the command exits non-zero if any
# failed.  A stage script that exits 77 did not run (a verifier the machine
# lacks): it is reported as skipped, never as passed.  COWTABLE_PRESETS="release" limits the CMake presets,
# COWTABLE_STAGES="release rust" the stages.
set -u
cd "$(dirname "$0")/.."
sh scripts/setup.sh || exit 1

jobs=$(nproc 2>/dev/null || echo 2)
presets=${COWTABLE_PRESETS:-"release asan tsan fuzz"}
stages=${COWTABLE_STAGES:-"$presets genmc rust debian kernel cross"}
export ASAN_OPTIONS="abort_on_error=0:halt_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

preset() {
	cmake --preset "$1" >/dev/null &&
		cmake --build "build/$1" -j "$jobs" >/dev/null &&
		ctest --test-dir "build/$1" --output-on-failure -j "$jobs"
}

passed=0
failed=0
skipped=0
report=""
for s in $stages; do
	echo "=== $s"
	start=$(date +%s)
	case "$s" in
	genmc) sh scripts/genmc.sh ;;
	rust) sh scripts/rust-test.sh ;;
	debian) sh scripts/deb-test.sh ;;
	kernel) sh scripts/kernel-test.sh 10 && sh scripts/kernel-test.sh --control 5 ;;
	cross) sh scripts/cross-test.sh ;;
	*) preset "$s" ;;
	esac
	rc=$?
	secs=$(($(date +%s) - start))
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		report="$report
  $s: passed ($secs s)"
	elif [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
		report="$report
  $s: skipped ($secs s)"
	else
		failed=$((failed + 1))
		report="$report
  $s: FAILED, exit status $rc ($secs s)"
	fi
done
echo "=== summary$report"
echo "stages: $passed passed, $skipped skipped, $failed failed"
[ $failed -eq 0 ]
