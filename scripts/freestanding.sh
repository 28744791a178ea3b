#!/bin/sh
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

# Concurrency Kit's source, from Debian (adds a deb-src entry if none).
src="$(dirname "$out")/ck-source"
if [ ! -f "$src/ck_epoch.c" ]; then
	if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		cat >/etc/apt/sources.list.d/cowtable-deb-src.sources <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		apt-get update -qq
	fi
	command -v dpkg-source >/dev/null || apt-get install -y -qq dpkg-dev >/dev/null
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get source -qq ck >/dev/null 2>&1)
	mkdir -p "$src"
	cp "$tmp"/ck-*/src/ck_epoch.c "$src/"
	rm -rf "$tmp"
fi

cc=${CC:-gcc}
flags="-std=c11 -O2 -Wall -Wextra -Werror -ffreestanding -nostdlib -fno-builtin
 -fno-pic -fno-stack-protector -fno-asynchronous-unwind-tables -fno-common"
case "$(uname -m)" in
x86_64) flags="$flags -mno-red-zone -mcmodel=kernel -mgeneral-regs-only" ;;
aarch64) flags="$flags -mgeneral-regs-only" ;;
esac
defs="-DCOWTABLE_NO_DEFAULT_ALLOCATOR"
[ $control -eq 1 ] && defs=""

objs=""
for f in src/skiplist.c src/entry.c src/context.c src/range.c; do
	o="$out/$(basename "$f" .c).o"
	# shellcheck disable=SC2086
	$cc $flags $defs -Iinclude -Isrc -c "$f" -o "$o"
	objs="$objs $o"
done
# ck's own file: its warnings are not ours to fix.
# shellcheck disable=SC2086
$cc $(echo "$flags" | sed 's/-Werror//; s/-Wextra//') -w -c "$src/ck_epoch.c" -o "$out/ck_epoch.o"
# shellcheck disable=SC2086
ld -r -o "$out/cowtable_kernel.o" $objs "$out/ck_epoch.o"

obj="$out/cowtable_kernel.o"
fail=0
undef=$(nm -u "$obj" | awk '{print $2}' | sort -u)
for s in $undef; do
	case "$s" in
	memset | memcpy) ;;
	*)
		echo "VIOLATION: undefined symbol $s (only memset and memcpy may come from the host)"
		fail=1
		;;
	esac
done
if readelf -S "$obj" | grep -Eq '\.t(data|bss)'; then
	echo "VIOLATION: thread-local storage"
	fail=1
fi
if objdump -d "$obj" | grep -Eq '%[xyz]mm[0-9]'; then
	echo "VIOLATION: floating point or vector registers used"
	fail=1
fi
echo "freestanding object: $obj ($(wc -c <"$obj") bytes); undefined: $(echo $undef)"
if [ $fail -ne 0 ]; then
	echo "freestanding check: FAIL"
	exit 1
fi
echo "freestanding check: PASS"
