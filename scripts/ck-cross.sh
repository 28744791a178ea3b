#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Builds Concurrency Kit for another architecture from Debian's source
# package (unpacked in build/ck by scripts/ck-source.sh, part of
# scripts/setup.sh) and installs it, static library only, in
# build/cross/ARCH/ck, where the cross toolchain files
# (cmake/toolchains/ARCH-linux-gnu.cmake) and scripts/freestanding.sh --arch
# look for it.  Once: a second call finds it built.
#
#   sh scripts/ck-cross.sh ARCH    ARCH: aarch64, riscv64 or s390x
#
# ck has its own port for aarch64 (LL/SC, as Debian's arm64 package builds
# it) and for s390x; riscv64 has none, so it uses the compiler's __atomic
# builtins (--use-cc-builtins).  Its configure runs the programs it compiles,
# so it is run with the host's gcc and the build with the cross compiler.
# Exits 77 when the cross compiler is not installed.
set -eu
cd "$(dirname "$0")/.."
arch=${1:?usage: ck-cross.sh aarch64|riscv64|s390x}
case "$arch" in
aarch64 | s390x) port="--platform=$arch" ;;
riscv64) port="--platform=$arch --use-cc-builtins" ;;
*)
	echo "ck-cross.sh: unknown architecture $arch"
	exit 2
	;;
esac
triple=$arch-linux-gnu
top=$PWD/build/cross/$arch
[ -f "$top/ck/lib/libck.a" ] && [ -f "$top/ck/lib/pkgconfig/ck.pc" ] && exit 0
if ! command -v "$triple-gcc" >/dev/null; then
	echo "ck-cross.sh: $triple-gcc is not installed (scripts/setup.sh installs it)"
	exit 77
fi
if [ ! -f build/ck/configure ]; then
	echo "ck-cross.sh: build/ck is missing: run scripts/setup.sh first"
	exit 1
fi
mkdir -p "$top"
rm -rf "$top/ck-src" "$top/ck"
cp -r build/ck "$top/ck-src"
log=$top/ck-build.log
tools="CC=$triple-gcc LD=$triple-gcc AR=$triple-ar"
# shellcheck disable=SC2086
if ! (cd "$top/ck-src" &&
	CC=gcc ./configure $port --prefix="$top/ck" --libdir="$top/ck/lib" &&
	make -j2 $tools && make install $tools) >"$log" 2>&1; then
	tail -20 "$log"
	echo "ck-cross.sh: Concurrency Kit did not build for $arch; see $log"
	exit 1
fi
# The static library only: the tests link it into themselves, so qemu needs
# no libck.so from the target.
rm -f "$top/ck/lib"/libck.so*
echo "ck-cross.sh: Concurrency Kit $(sed -n 's/^Version: //p' "$top/ck/lib/pkgconfig/ck.pc") for $arch in $top/ck ($port)"
