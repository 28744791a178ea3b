#!/bin/sh
# Unpacks Debian's source package of Concurrency Kit into $1/ck (once), for
# the builds that compile ck_epoch.c themselves (freestanding, kernel module).
# Adds a deb-src entry for bookworm if the machine has none.
set -eu
dir=$1/ck
[ -f "$dir/src/ck_epoch.c" ] && exit 0
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
mkdir -p "$1"
rm -rf "$dir"
mv "$tmp"/ck-*/ "$dir"
rm -rf "$tmp"
