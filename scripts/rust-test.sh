#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Builds and tests the Rust crate in bindings/rust with Debian's toolchain
# (/usr/bin/cargo, rustc 1.63) and, when a different cargo comes first on
# PATH (rustup's), with that one too; each in three configurations:
#   default features (std), --no-default-features --features alloc, and
#   --no-default-features (no_std; the doctests need `alloc` and are skipped).
# Needs rustc and cargo installed (Debian packages: rustc cargo) and the C
# library's build dependencies (scripts/setup.sh); installs nothing.
# Builds the release preset's static library if build/release/libcowtable.a
# is missing.  Exits non-zero on the first failure.
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
crate="$root/bindings/rust"

if [ ! -f build/release/libcowtable.a ]; then
	echo "rust-test: building the C library (release preset)"
	cmake --preset release
	cmake --build build/release -j2 --target cowtable
fi

if [ ! -x /usr/bin/cargo ] || [ ! -x /usr/bin/rustc ]; then
	echo "rust-test: /usr/bin/cargo or /usr/bin/rustc missing (Debian: apt-get install rustc cargo)" >&2
	exit 1
fi

# run NAME CARGO [RUSTC RUSTDOC]: the three configurations with one toolchain.
run() {
	name=$1
	cargo=$2
	echo "rust-test: $name: $("$cargo" --version)"
	for features in "" "--no-default-features --features alloc" "--no-default-features --lib --tests"; do
		echo "rust-test: $name: cargo test --offline $features"
		# A lock file written by a newer cargo cannot be read by an older
		# one; the crate has no dependencies, so there is nothing to lock.
		rm -f "$crate/Cargo.lock"
		# shellcheck disable=SC2086
		(cd "$crate" && CARGO_TARGET_DIR="$root/build/rust/$name" "$cargo" test --offline $features)
	done
}

# Debian's cargo must use Debian's rustc, not a rustc that comes first on PATH.
RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc run debian /usr/bin/cargo

path_cargo=$(command -v cargo || true)
if [ -n "$path_cargo" ] && [ "$(readlink -f "$path_cargo")" != "$(readlink -f /usr/bin/cargo)" ]; then
	(
		unset RUSTC RUSTDOC
		run path "$path_cargo"
	)
fi
rm -f "$crate/Cargo.lock"
echo "rust-test: all passed"
