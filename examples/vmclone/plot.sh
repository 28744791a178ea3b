#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Plots a vmclone run with gnuplot, as bench/plot.sh plots cowbench's:
#   vmclone_latency.png  p50 and p99 of one write fault (log scale), cowtable's
#                        user-space copy-on-write beside the kernel's own, for
#                        each V x T and mix;
#   vmclone_rate.png     faults per second, the same rows.
#   build/release/examples/vmclone --data=results/vmclone.data   (not .dat:
#   bench/plot.sh clears results/*.dat)
#   sh examples/vmclone/plot.sh results/vmclone.data [png-dir]   (default: beside it)
set -eu
dat=${1:?usage: plot.sh vmclone.data [png-dir]}
out=${2:-$(dirname "$dat")}
mkdir -p "$out"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# One row per configuration: label, then cowtable's and the kernel's p50, p99
# and faults/s (the data file has one line per run; the kernel's follows).
awk '$1 == "cowtable" {n++; label[n] = $3 "_" $4 "_" $2; cp50[n] = $6; cp99[n] = $7; crate[n] = $5
                       kp50[n] = "n/a"; kp99[n] = "n/a"; krate[n] = "n/a"}
     $1 == "kernel" && n {kp50[n] = $6; kp99[n] = $7; krate[n] = $5}
     END {for (i = 1; i <= n; i++)
              print i, label[i], cp50[i], cp99[i], kp50[i], kp99[i], crate[i], krate[i]}' \
	"$dat" >"$tmp"

gnuplot <<GP
set terminal png size 1000,520 noenhanced
set output "$out/vmclone_latency.png"
set title "vmclone: one write fault on a shared guest page (V clones x T vCPUs, mix)\ncowtable in a user-space handler beside the kernel's MAP_PRIVATE copy-on-write"
set datafile missing "n/a"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85
set boxwidth 0.9
set logscale y
set ylabel "microseconds (log scale, lower is better)"
set grid ytics
set xtics rotate by -20 font ",9"
set key outside right top vertical
plot "$tmp" using 3:xtic(2) lc rgb "#d95f02" title "cowtable p50", \
     "" using 4 lc rgb "#fdb863" title "cowtable p99", \
     "" using 5 lc rgb "#666666" title "kernel p50", \
     "" using 6 lc rgb "#bbbbbb" title "kernel p99"
GP

gnuplot <<GP
set terminal png size 1000,480 noenhanced
set output "$out/vmclone_rate.png"
set title "vmclone: write faults per second, all vCPUs together (higher is better)"
set datafile missing "n/a"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85
set boxwidth 0.9
set ylabel "faults per second"
set yrange [0:*]
set grid ytics
set xtics rotate by -20 font ",9"
set key outside right top vertical
plot "$tmp" using 7:xtic(2) lc rgb "#d95f02" title "cowtable", \
     "" using 8 lc rgb "#666666" title "kernel"
GP
echo "plots: $out/vmclone_latency.png $out/vmclone_rate.png"
