#!/bin/sh
# Installs what building and testing cowtable needs, from Debian's packages.
# Idempotent and quiet when everything is already there.  Run as root (or
# with sudo available) on Debian bookworm.
set -eu

need="cmake make gcc g++ clang pkg-config libck-dev libclang-rt-14-dev
libbenchmark-dev libcds-dev libtbb-dev liburcu-dev libbsd-dev gnuplot-nox dpkg-dev"

missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "setup: installing$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
