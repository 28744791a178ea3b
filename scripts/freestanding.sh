#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Builds cowtable's core as a kernel would: src/ and Concurrency Kit's
# ck_epoch.c (from Debian's source package, never from a copy in this
# repository) compiled freestanding into one relocatable object, then checks
# what it needs from its host: no undefined symbol but memset and memcpy, no
# thread-local storage, no floating point or vector registers or
# instructions (a scan of the disassembly).
#
#   sh scripts/freestanding.sh [--arch ARCH] [build-dir]   build and check
#   sh scripts/freestanding.sh --control [--arch ARCH] [build-dir]
#       the same with the default (malloc) allocator compiled in: the check
#       must fail, proving it fires
#   sh scripts/freestanding.sh --control-float [--arch ARCH] [build-dir]
#       the same with tests/freestanding/float_control.c linked in, compiled
#       without the flags that forbid floating point: the scan must fail
#
# ARCH is x86_64 (the host's, the default), aarch64 or riscv64, compiled
# with the flags Linux uses for that architecture's kernel code: x86_64
# -mcmodel=kernel -mno-red-zone -mgeneral-regs-only; aarch64
# -mgeneral-regs-only; riscv64 -march=rv64imac -mabi=lp64 -mcmodel=medany.
# Another architecture uses Debian's ARCH-linux-gnu toolchain ($CC if set)
# and Concurrency Kit's headers configured for it (scripts/ck-cross.sh);
# exits 77 when that toolchain is not installed.
set -eu
cd "$(dirname "$0")/.."
control=none
arch=$(uname -m)
while [ $# -gt 0 ]; do
	case "$1" in
	--control) control=malloc ;;
	--control-float) control=float ;;
	--arch)
		arch=$2
		shift
		;;
	*) break ;;
	esac
	shift
done
out=${1:-build/freestanding}
[ "$arch" = "$(uname -m)" ] || out="$out-$arch"
[ $control = malloc ] && out="$out-control"
[ $control = float ] && out="$out-control-float"
mkdir -p "$out"

# Concurrency Kit's source, from Debian's source package (scripts/setup.sh).
src=build/ck/src
if [ ! -f "$src/ck_epoch.c" ]; then
	echo "freestanding: $src/ck_epoch.c is missing: run scripts/setup.sh first"
	exit 1
fi

# Code generation as a kernel wants it; warnings only for our own files.
flags="-std=c11 -O2 -ffreestanding -nostdlib -fno-builtin
 -fno-pic -fno-stack-protector -fno-asynchronous-unwind-tables -fno-common"
ckflags=""
if [ "$arch" = "$(uname -m)" ]; then
	cc=${CC:-gcc}
	tools=""
else
	tools=$arch-linux-gnu-
	cc=${CC:-${tools}gcc}
	if ! command -v "$cc" >/dev/null; then
		echo "freestanding: $cc is not installed (scripts/setup.sh installs it): skipped"
		exit 77
	fi
	rc=0
	sh scripts/ck-cross.sh "$arch" || rc=$?
	[ $rc -eq 0 ] || exit $rc
	# ck's headers configured for the target, with its port's definitions.
	ckpc=build/cross/$arch/ck/lib/pkgconfig
	ckflags=$(PKG_CONFIG_LIBDIR=$ckpc PKG_CONFIG_PATH='' pkg-config --cflags ck)
fi
if [ "$arch" = riscv64 ]; then
	# Debian's riscv64 glibc headers are for the lp64d ABI only; ck's
	# headers include <limits.h> and <string.h> from them, whose
	# gnu/stubs.h wants gnu/stubs-lp64.h under -mabi=lp64.  That file only
	# lists functions glibc lacks, the same for either ABI: here it is the
	# lp64d one.  No function of these headers but memset and memcpy is
	# used (the undefined symbol check below).
	mkdir -p "$out/include/gnu"
	echo '#include <gnu/stubs-lp64d.h>' >"$out/include/gnu/stubs-lp64.h"
	ckflags="$ckflags -I$out/include"
fi
# The flags that keep kernel code off the FP and vector registers: the
# float control's file is compiled without them.
case "$arch" in
x86_64)
	flags="$flags -mno-red-zone -mcmodel=kernel"
	nofp="-mgeneral-regs-only"
	;;
aarch64) nofp="-mgeneral-regs-only" ;;
riscv64)
	flags="$flags -mcmodel=medany"
	nofp="-march=rv64imac -mabi=lp64"
	;;
*)
	echo "freestanding: no kernel flags known for $arch"
	exit 2
	;;
esac
warnings="-Wall -Wextra -Werror"
defs="-DCOWTABLE_NO_DEFAULT_ALLOCATOR"
[ $control = malloc ] && defs=""

objs=""
for f in src/*.c; do
	o="$out/$(basename "$f" .c).o"
	# shellcheck disable=SC2086
	$cc $flags $nofp $warnings $defs $ckflags -Iinclude -Isrc -c "$f" -o "$o"
	objs="$objs $o"
done
# ck's own file, unchanged from Debian's package: its warnings are not ours.
# shellcheck disable=SC2086
$cc $flags $nofp $ckflags -w -c "$src/ck_epoch.c" -o "$out/ck_epoch.o"
objs="$objs $out/ck_epoch.o"
if [ $control = float ]; then
	# riscv64: with the F and D extensions, in the soft-float ABI the
	# linker requires of every file of the object.
	withfp=""
	[ "$arch" = riscv64 ] && withfp="-march=rv64imafdc -mabi=lp64"
	# shellcheck disable=SC2086
	$cc $flags $withfp $warnings -c tests/freestanding/float_control.c -o "$out/float_control.o"
	objs="$objs $out/float_control.o"
fi
# shellcheck disable=SC2086
"${tools}ld" -r -o "$out/cowtable_kernel.o" $objs

obj="$out/cowtable_kernel.o"
fail=0
undef=$("${tools}nm" -u "$obj" | awk '{print $2}' | sort -u)
for s in $undef; do
	case "$s" in
	memset | memcpy) ;;
	*)
		echo "FAIL freestanding.sh: undefined symbol $s (only memset and memcpy may come from the host)"
		fail=1
		;;
	esac
done
if "${tools}readelf" -S "$obj" | grep -Eq '\.t(data|bss)'; then
	echo "FAIL freestanding.sh: thread-local storage"
	fail=1
fi
# The disassembly, one "mnemonic operands" line an instruction (objdump
# separates address, encoding, mnemonic and operands by tabs; what follows
# "#", "//" or "<" is a comment or a symbol's name).
"${tools}objdump" -d --no-show-raw-insn "$obj" |
	awk -F'\t' 'NF >= 2 && $1 ~ /^ *[0-9a-f]+:$/ {
		i = $2 " " $3; sub(/ *[0-9a-f]* <.*/, "", i); sub(/[#;].*/, "", i)
		sub(/\/\/.*/, "", i); print i }' >"$out/insns.txt"
case "$arch" in
x86_64)
	# SSE/AVX registers, x87 instructions.
	fp='%[xyz]mm[0-9]|%st(\(|$| |,)|^f[a-z]+ '
	;;
aarch64)
	# FP/SIMD registers (b, h, s, d, q and v views) and FP instructions.
	fp='(^|[ ,[{])[bhsdqv]([0-9]|[12][0-9]|3[01])([ ,.}]|$)|^f[a-z0-9]+ '
	;;
riscv64)
	# F/D registers (ABI names and f0-f31), F/D/Q and vector instructions
	# (fence is the one f... instruction that is neither).
	fp='(^|[ ,(])(f[0-9]+|ft[0-9]+|fs[0-9]+|fa[0-7]|v[0-9]+)([ ,)]|$)|^(f[a-z.]+|v[a-z0-9.]+) '
	;;
esac
hits=$(grep -Ev '^fence' "$out/insns.txt" | grep -Ec "$fp" || true)
if [ "$hits" -ne 0 ]; then
	echo "FAIL freestanding.sh: floating point or vector registers used ($hits instructions on $arch), e.g.:"
	grep -Ev '^fence' "$out/insns.txt" | grep -E "$fp" | head -3 | sed 's/^/  /'
	fail=1
fi
echo "freestanding object ($arch): $obj ($(wc -c <"$obj") bytes, $(wc -l <"$out/insns.txt") instructions); undefined: $(echo $undef)"
if [ $fail -ne 0 ]; then
	echo "freestanding check: FAIL"
	exit 1
fi
echo "freestanding check: PASS"
