#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Installs everything the two commands need, from Debian's packages, and
# fetches Concurrency Kit's source package (for the builds that compile
# ck_epoch.c themselves: the freestanding object and the kernel module).
# Idempotent and quiet when everything is already there.  Tests never
# install anything: they only check that what they need is here.  Run as
# root (or with sudo available) on Debian bookworm.
set -eu
cd "$(dirname "$0")/.."

# Build and test: the library, sanitizers, the Rust crate, the Debian
# packages, kernel-doc, the kernel module in a qemu guest.
need="cmake make gcc g++ clang pkg-config libck-dev libclang-rt-14-dev dpkg-dev
rustc cargo debhelper lintian man-db build-essential perl linux-kbuild-6.1
linux-image-amd64 linux-headers-amd64 qemu-system-x86 busybox-static cpio llvm"
# The benchmark and its peers.
need="$need libbenchmark-dev libcds-dev libtbb-dev liburcu-dev libbsd-dev gnuplot-nox libjudy-dev
linux-source-6.1"

missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -n "$missing" ]; then
	echo "setup: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Cross builds (scripts/cross-test.sh): Debian's cross toolchains and
# qemu-user for aarch64, riscv64 and s390x.  Installed apart from the rest and
# allowed to fail: an architecture whose toolchain is missing is reported
# skipped by the cross stage, by name, never passed.
cross="crossbuild-essential-arm64 crossbuild-essential-s390x gcc-riscv64-linux-gnu
g++-riscv64-linux-gnu libc6-dev-riscv64-cross qemu-user-static"
cmissing=""
for p in $cross; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		cmissing="$cmissing $p"
done
if [ -n "$cmissing" ]; then
	echo "setup: installing$cmissing"
	export DEBIAN_FRONTEND=noninteractive
	[ -n "$missing" ] || $sudo apt-get update -qq || true
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $cmissing >/dev/null ||
		echo "setup: cross toolchains not all installed; the cross stage skips what is missing"
fi
sh scripts/ck-source.sh build
# GenMC, the model checker, is not in Debian: built from ../shared/tools/genmc
# when that is there (about 6 minutes, once); scripts/genmc.sh says when it
# is missing.
genmc_src=../shared/tools/genmc
if [ ! -x /opt/genmc-0.10.3/bin/genmc ] && [ -f "$genmc_src/build.sh" ]; then
	echo "setup: building GenMC from $genmc_src"
	sh "$genmc_src/build.sh" >build/genmc-build.log 2>&1 || {
		echo "setup: GenMC did not build; see build/genmc-build.log"
		exit 1
	}
fi
