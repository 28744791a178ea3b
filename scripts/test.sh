#!/bin/sh
# The test command: set up, then build and run every test in three builds:
#   release  gcc -O2, warnings as errors, plus the installed-package check
#   asan     gcc, AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan     clang, ThreadSanitizer (library atomics as __atomic builtins)
# Each build also runs the broken controls, which pass only when the bug
# planted in them is caught.  Last, cowtable runs as a Linux kernel module in
# a 2-CPU qemu guest (scripts/kernel-test.sh), with its broken control.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh

jobs=$(nproc 2>/dev/null || echo 2)
presets=${COWTABLE_PRESETS:-"release asan tsan"}
export ASAN_OPTIONS="abort_on_error=0:halt_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

for p in $presets; do
	echo "=== $p: configure and build"
	cmake --preset "$p" >/dev/null
	cmake --build "build/$p" -j "$jobs" >/dev/null
	echo "=== $p: test"
	ctest --test-dir "build/$p" --output-on-failure -j "$jobs"
done
stages=0
for p in $presets; do stages=$((stages + 1)); done

echo "=== kernel: the torture as a module in a 2-CPU Linux guest"
sh scripts/kernel-test.sh 10
sh scripts/kernel-test.sh --control 5
stages=$((stages + 2))
echo "all test builds passed: $presets, kernel module and its control"
echo "stages: $stages passed, 0 failed"
