#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# CTest's fuzz runs: run.sh <seed corpus> <scratch dir> <fuzzer> [libFuzzer flags...]
# Copies the seed corpus into the scratch directory and fuzzes from the copy,
# so that the committed corpus is never written to.  Crashes are saved in the
# scratch directory.
set -eu
seeds=$1
dir=$2
fuzzer=$3
shift 3
rm -rf "$dir"
mkdir -p "$dir"
cp -R "$seeds" "$dir/corpus"
exec "$fuzzer" "$@" -artifact_prefix="$dir/" "$dir/corpus"
