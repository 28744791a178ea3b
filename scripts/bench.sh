#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The main job: set up, build optimised, run the fork-heavy benchmark against
# every peer (and the linux-fork reference), print the comparison table, and
# write Google Benchmark JSON and PNG plots (summary.png, one per workload,
# is_cow_dense_by_size.png) to results/.  Each figure is the median of three
# repetitions run interleaved (cowbench's defaults; flags given here, such as
# --benchmark_repetitions=5, override them).
#   sh scripts/bench.sh            the headline set (about five minutes)
#   sh scripts/bench.sh --long     every size, mix and thread count, 64 GiB
# `sh bench/plot.sh results docs/bench` then refreshes docs/benchmarks.md's
# figures from that run.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
cmake --preset release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target cowbench >/dev/null
mkdir -p results
./build/release/bench/cowbench "$@" --benchmark_out=results/bench.json \
	--benchmark_out_format=json --benchmark_color=false | tee results/bench.txt
sh bench/plot.sh results
echo "results: results/bench.txt, results/bench.json, results/summary.png, results/*.png"
