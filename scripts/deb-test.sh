#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# The Debian packages, built and tested on this system:
#   1. copies the source tree to a temporary directory (dpkg-buildpackage
#      writes its results into the parent directory; the repository stays
#      clean) and builds libcowtable0 and libcowtable-dev there
#      (dpkg-buildpackage -us -uc -b);
#   2. runs lintian on the .changes: fails on any error;
#   3. installs both packages with dpkg -i;
#   4. compiles and runs tests/contract_consumer.c against the installed
#      packages only: pkg-config (shared), pkg-config --static (a static
#      executable), and CMake's find_package(cowtable);
#   5. checks that man finds the installed pages (man -w cowtable_release);
#   6. purges both packages again, on success and on failure alike.
# Installs nothing from the network: scripts/setup.sh provides what it needs
# (dpkg-dev, debhelper, lintian, man-db, build-essential, cmake, pkg-config,
# libck-dev, linux-kbuild-6.1).  Needs root, or sudo, for dpkg.
set -eu
cd "$(dirname "$0")/.."
start=$(date +%s)
jobs=$(nproc 2>/dev/null || echo 2)
pkgs="libcowtable-dev libcowtable0"

say() { echo "deb-test: $*"; }
fail() {
	say "FAIL: $*"
	exit 1
}

missing=""
for t in dpkg-buildpackage:dpkg-dev dh:debhelper lintian:lintian man:man-db cc:build-essential \
	cmake:cmake pkg-config:pkg-config; do
	command -v "${t%%:*}" >/dev/null 2>&1 || missing="$missing ${t#*:}"
done
[ -z "$missing" ] || fail "missing tools; install:$missing (scripts/setup.sh does)"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || fail "dpkg -i needs root or sudo"
	sudo="sudo"
fi
# Never replace (and then remove) packages someone installed on purpose.
for p in $pkgs; do
	if dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^.[^n]'; then
		fail "$p is already installed here; remove it first (dpkg --purge $p)"
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cowtable-deb.XXXXXX")
installed=0
cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ $installed -eq 1 ]; then
		# shellcheck disable=SC2086
		$sudo dpkg --purge $pkgs >"$tmp/purge.log" 2>&1 || {
			cat "$tmp/purge.log"
			rc=1
		}
		left=""
		for p in $pkgs; do
			dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^.[^n]' &&
				left="$left $p"
		done
		if [ -n "$left" ]; then
			say "could not remove:$left"
			rc=1
		else
			say "packages purged again"
		fi
	fi
	rm -rf "$tmp"
	[ $rc -eq 0 ] || say "FAILED (exit $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. Build in a copy of the tree: what git tracks plus new files it does not
# ignore (so local changes are tested, build directories are not), or, outside
# a git checkout, everything but the build directories.
upstream=$(dpkg-parsechangelog -l debian/changelog -SVersion | sed 's/-[^-]*$//')
tree="$tmp/cowtable-$upstream"
mkdir "$tree"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# shellcheck disable=SC2016
	git ls-files -z -co --exclude-standard |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done; true' sh |
		tar --null -T - -cf - | tar -xf - -C "$tree"
else
	tar --exclude='./build*' --exclude=./results --exclude=./out --exclude=./obj-* \
		--exclude=./debian/tmp -cf - . | tar -xf - -C "$tree"
fi
say "building the packages (dpkg-buildpackage -us -uc -b) in $tree"
(cd "$tree" && dpkg-buildpackage -us -uc -b -j"$jobs") >"$tmp/build.log" 2>&1 || {
	tail -60 "$tmp/build.log"
	fail "dpkg-buildpackage failed (log above)"
}
changes=$(ls "$tmp"/cowtable_*.changes)
lib=$(ls "$tmp"/libcowtable0_*.deb)
dev=$(ls "$tmp"/libcowtable-dev_*.deb)
say "built $(basename "$lib") $(basename "$dev")"

# 2. lintian: errors fail; warnings and the rest are shown.
say "lintian $(basename "$changes")"
lrc=0
lintian --fail-on error -I --pedantic "$changes" >"$tmp/lintian.log" 2>&1 || lrc=$?
grep -v 'running with root privileges is not recommended' "$tmp/lintian.log" | sed 's/^/  /' || true
errors=$(grep -c '^E: ' "$tmp/lintian.log" || true)
warnings=$(grep -c '^W: ' "$tmp/lintian.log" || true)
say "lintian: $errors error(s), $warnings warning(s)"
if [ $lrc -ne 0 ] || [ "$errors" -ne 0 ]; then
	fail "lintian reported errors (exit $lrc)"
fi

# 3. Install.  --path-include puts the man pages back on systems whose dpkg
# configuration excludes /usr/share/man (as minimal container images do).
installed=1
$sudo dpkg -i --path-include='/usr/share/man/man3/cowtable_*' "$lib" "$dev" >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log"
	fail "dpkg -i failed"
}
# shellcheck disable=SC2086
say "installed:$(dpkg-query -W -f=' ${Package} ${Version}' $pkgs)"

# 4. Consumers, built from a copy of the program outside the source tree and
# with nothing but what the packages installed.
unset PKG_CONFIG_PATH CMAKE_PREFIX_PATH LIBRARY_PATH CPATH C_INCLUDE_PATH LD_LIBRARY_PATH || true
cc=${CC:-cc}
c="$tmp/consumer"
mkdir "$c"
cp tests/contract_consumer.c "$c/"
pc=$(pkg-config --path cowtable) || fail "pkg-config does not find cowtable"
case "$pc" in
/usr/lib/*) ;;
*) fail "pkg-config found $pc, not the package's file" ;;
esac
dpkg -S "$pc" >/dev/null 2>&1 || fail "$pc belongs to no package"

say "consumer: $cc ... \$(pkg-config --cflags --libs cowtable)"
# shellcheck disable=SC2046
$cc -Wall -Wextra -Werror -o "$c/shared" "$c/contract_consumer.c" $(pkg-config --cflags --libs cowtable)
readelf -d "$c/shared" | grep -q 'NEEDED.*\[libcowtable\.so\.0\]' ||
	fail "the consumer does not link libcowtable.so.0"
so=$(ldd "$c/shared" | awk '/libcowtable\.so\.0/ {print $3}')
case "$so" in
/lib/* | /usr/lib/*) ;;
*) fail "libcowtable.so.0 resolves to '$so'" ;;
esac
"$c/shared"

say "consumer: $cc -static ... \$(pkg-config --static --cflags --libs cowtable)"
# shellcheck disable=SC2046
$cc -Wall -Wextra -Werror -static -o "$c/static" "$c/contract_consumer.c" \
	$(pkg-config --static --cflags --libs cowtable)
if readelf -d "$c/static" 2>/dev/null | grep -q NEEDED; then
	fail "the static consumer needs shared libraries"
fi
"$c/static"

say "consumer: CMake find_package(cowtable)"
mkdir "$c/cm"
cat >"$c/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(cowtable 0.1 REQUIRED CONFIG)
message(STATUS "cowtable_DIR: \${cowtable_DIR}")
add_executable(consumer ../contract_consumer.c)
target_link_libraries(consumer PRIVATE cowtable::cowtable)
add_executable(consumer_shared ../contract_consumer.c)
target_link_libraries(consumer_shared PRIVATE cowtable::cowtable_shared)
CM
CC=$cc cmake -S "$c/cm" -B "$c/cm/b" >"$tmp/cmake.log" 2>&1 || {
	cat "$tmp/cmake.log"
	fail "find_package(cowtable) failed"
}
dir=$(sed -n 's/^-- cowtable_DIR: //p' "$tmp/cmake.log")
case "$dir" in
/usr/lib/*/cmake/cowtable) ;;
*) fail "find_package found cowtable in '$dir', not in the package" ;;
esac
cmake --build "$c/cm/b" >"$tmp/cmake-build.log" 2>&1 || {
	cat "$tmp/cmake-build.log"
	fail "the CMake consumer did not build"
}
"$c/cm/b/consumer"
"$c/cm/b/consumer_shared"

# 5. The manual.
page=$(man -w cowtable_release 2>/dev/null) || fail "man -w cowtable_release finds no page"
case "$page" in
/usr/share/man/man3/cowtable_release.3*) ;;
*) fail "man -w cowtable_release gives $page" ;;
esac
n=0
for p in $(dpkg -L libcowtable-dev | grep '^/usr/share/man/man3/.*\.3\.gz$'); do
	name=$(basename "$p" .3.gz)
	[ "$(man -w "$name" 2>/dev/null)" = "$p" ] || fail "man -w $name does not find $p"
	man "$name" >/dev/null 2>&1 || fail "man $name does not render"
	n=$((n + 1))
done
[ $n -gt 0 ] || fail "libcowtable-dev has no man pages"
say "man: $page; $n pages found and rendered"

say "PASS in $(($(date +%s) - start)) s (packages are purged on exit)"
