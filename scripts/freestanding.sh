#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Builds cowtable's core as a kernel would: src/ and Concurrency Kit's
# ck_epoch.c (from Debian's source package, never from a copy in this
# repository) compiled freestanding into one relocatable object, then checks
# what it needs from its host: no undefined symbol but memset and memcpy, no
# thread-local storage, no floating point or vector registers.
#
#   sh scripts/freestanding.sh [build-dir]            build and check
#   sh scripts/freestanding.sh --control [build-dir]  the same with the default
#       (malloc) allocator compiled in: the check must fail, proving it fires
set -eu
cd "$(dirname "$0")/.."
control=0
if [ "${1:-}" = "--control" ]; then
	control=1
	shift
fi
out=${1:-build/freestanding}
[ $control -eq 1 ] && out="$out-control"
mkdir -p "$out"

# Concurrency Kit's source, from Debian's source package (scripts/setup.sh).
src=build/ck/src
if [ ! -f "$src/ck_epoch.c" ]; then
	echo "freestanding: $src/ck_epoch.c is missing: run scripts/setup.sh first"
	exit 1
fi

cc=${CC:-gcc}
# Code generation as a kernel wants it; warnings only for our own files.
flags="-std=c11 -O2 -ffreestanding -nostdlib -fno-builtin
 -fno-pic -fno-stack-protector -fno-asynchronous-unwind-tables -fno-common"
case "$(uname -m)" in
x86_64) flags="$flags -mno-red-zone -mcmodel=kernel -mgeneral-regs-only" ;;
aarch64) flags="$flags -mgeneral-regs-only" ;;
esac
warnings="-Wall -Wextra -Werror"
defs="-DCOWTABLE_NO_DEFAULT_ALLOCATOR"
[ $control -eq 1 ] && defs=""

objs=""
for f in src/*.c; do
	o="$out/$(basename "$f" .c).o"
	# shellcheck disable=SC2086
	$cc $flags $warnings $defs -Iinclude -Isrc -c "$f" -o "$o"
	objs="$objs $o"
done
# ck's own file, unchanged from Debian's package: its warnings are not ours.
# shellcheck disable=SC2086
$cc $flags -w -c "$src/ck_epoch.c" -o "$out/ck_epoch.o"
# shellcheck disable=SC2086
ld -r -o "$out/cowtable_kernel.o" $objs "$out/ck_epoch.o"

obj="$out/cowtable_kernel.o"
fail=0
undef=$(nm -u "$obj" | awk '{print $2}' | sort -u)
for s in $undef; do
	case "$s" in
	memset | memcpy) ;;
	*)
		echo "FAIL freestanding.sh: undefined symbol $s (only memset and memcpy may come from the host)"
		fail=1
		;;
	esac
done
if readelf -S "$obj" | grep -Eq '\.t(data|bss)'; then
	echo "FAIL freestanding.sh: thread-local storage"
	fail=1
fi
if objdump -d "$obj" | grep -Eq '%[xyz]mm[0-9]'; then
	echo "FAIL freestanding.sh: floating point or vector registers used"
	fail=1
fi
echo "freestanding object: $obj ($(wc -c <"$obj") bytes); undefined: $(echo $undef)"
if [ $fail -ne 0 ]; then
	echo "freestanding check: FAIL"
	exit 1
fi
echo "freestanding check: PASS"
