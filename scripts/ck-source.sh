#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Unpacks Debian's source package of Concurrency Kit into $1/ck (once), for
# the builds that compile ck_epoch.c themselves (freestanding, kernel module).
# Adds a deb-src entry for bookworm if the machine has none.  Part of
# scripts/setup.sh: it changes the system, so no test calls it.
set -eu
dir=$1/ck
[ -f "$dir/src/ck_epoch.c" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	$sudo tee /etc/apt/sources.list.d/cowtable-deb-src.sources >/dev/null <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	$sudo apt-get update -qq
fi
tmp=$(mktemp -d)
(cd "$tmp" && apt-get source -qq ck >/dev/null 2>&1)
mkdir -p "$1"
rm -rf "$dir"
mv "$tmp"/ck-*/ "$dir"
rm -rf "$tmp"
