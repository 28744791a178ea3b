#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# Checks the kernel-doc comments of the public header with the Linux kernel's
# own checker (kernel-doc -none, verbose, Debian package linux-kbuild-6.1):
# prints every warning and fails if there is one.  Exits 77 (skipped, as
# CTest's SKIP_RETURN_CODE says) with "skipped" when kernel-doc is not
# installed.
#
#   sh scripts/kernel-doc-check.sh [header...]   default: include/cowtable.h
#   KERNEL_DOC=/path/to/kernel-doc               use that script
set -eu
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- include/cowtable.h

kd=${KERNEL_DOC:-}
if [ -z "$kd" ]; then
	kd=$(command -v kernel-doc 2>/dev/null || true)
fi
if [ -z "$kd" ]; then
	# The newest linux-kbuild-* that is installed.
	f=$(printf '%s\n' /usr/lib/linux-kbuild-*/scripts/kernel-doc | sort -V | tail -n 1)
	[ -x "$f" ] && kd=$f
fi
if [ -z "$kd" ]; then
	echo "kernel-doc-check: skipped: kernel-doc not installed (Debian: linux-kbuild-6.1)"
	exit 77
fi
if [ ! -x "$kd" ]; then
	echo "kernel-doc-check: KERNEL_DOC=$kd is not executable"
	exit 1
fi

rc=0
out=$("$kd" -none -v -Werror "$@" 2>&1) || rc=$?
# -v adds "info:" lines (one per documented item); everything else is a finding.
findings=$(printf '%s\n' "$out" | grep -v ': info: ' | grep -v '^$' || true)
if [ $rc -ne 0 ] || [ -n "$findings" ]; then
	printf '%s\n' "$findings"
	n=$(printf '%s\n' "$findings" | grep -c ': warning: \|: error: ' || true)
	echo "kernel-doc-check: FAIL: $n warning(s) from $kd on $* (exit $rc)"
	exit 1
fi
items=$(printf '%s\n' "$out" | grep -c ': info: ' || true)
echo "kernel-doc-check: PASS: $* ($items documented items, 0 warnings, $kd)"
