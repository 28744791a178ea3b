#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Plots a cowbench run (the tables of results/bench.txt) with gnuplot:
#   summary.png      cowtable's speed relative to each peer for every workload,
#                    log scale, 1x line (right of it cowtable is faster);
#   <workload>.png   ns per page or operation (or bytes) of each structure,
#                    cowtable's bar highlighted, linux-fork's in grey.
#   sh bench/plot.sh [results-dir [png-dir]]     (default: results results)
# `sh bench/plot.sh results docs/bench` refreshes the documentation's figures.
set -eu
dir=${1:-results}
out=${2:-$dir}
txt="$dir/bench.txt"
mkdir -p "$out"
rm -f "$dir"/*.dat

# A table line: the workload's words, then one value per column.  The name
# ends at the first value (a number, n/a or FAILED).
split='function split_row(   i) { name = $1; s = 2
         while (s <= NF && $s !~ /^[0-9.]+x?$/ && $s != "n/a" && $s != "FAILED") { name = name "_" $s; s++ }
         gsub(/[^A-Za-z0-9_+.-]/, "_", name) }'

# Per-workload data: peer, value, colour.
awk "$split"'
     /Lower is better/ {on = 1; next}
     on && /^workload/ {for (i = 2; i <= NF; i++) peer[i] = $i; next}
     on && NF == 0 {exit}
     on {split_row(); f = "'"$dir"'/" name ".dat"
         for (i = s; i <= NF; i++) {
             if ($i == "n/a" || $i == "FAILED") continue
             p = peer[i - s + 2]
             c = p == "cowtable" ? "0xd95f02" : p == "linux-fork" ? "0x999999" : "0x3070b0"
             print p, $i, c > f }
         close(f)}' "$txt"

# Summary data: one row per workload, one column per peer (ratios).
awk "$split"'
     /speed relative to each peer/ {on = 1; next}
     on && /^workload/ {printf "row workload"; for (i = 2; i <= NF; i++) if ($i != "linux-fork") {keep[i] = 1; printf " %s", $i}
                        print ""; next}
     on && (NF == 0 || $1 == "") {exit}
     on && /^  / {exit}
     on {split_row(); printf "%d %s", ++n, name
         for (i = s; i <= NF; i++) if (keep[i - s + 2]) {v = $i; sub(/x$/, "", v); printf " %s", v}
         print ""}' "$txt" >"$dir/summary.dat"

for dat in "$dir"/*.dat; do
	[ -e "$dat" ] || continue
	name=$(basename "$dat" .dat)
	[ "$name" = summary ] && continue
	unit="ns per page or operation (lower is better)"
	case "$name" in
	memory*) unit="bytes per tracked page (lower is better)" ;;
	*_p50 | *_p99 | *_p99.9) unit="ns of one operation (lower is better)" ;;
	esac
	gnuplot <<GP
set terminal png size 900,480 noenhanced
set output "$out/$name.png"
set title "$name"
set style fill solid 0.85
set boxwidth 0.7
set xtics rotate by -30
set ylabel "$unit"
set logscale y
set grid ytics
set offsets 0.5, 0.5, graph 0.08, 0
plot "$dat" using 0:2:3:xtic(1) with boxes lc rgb variable notitle, \
     "" using 0:2:(\$2 >= 100 ? sprintf("%.0f", \$2) : sprintf("%.3g", \$2)) \
        with labels offset 0,0.7 font ",8" notitle
GP
done

rows=$(($(wc -l <"$dir/summary.dat") - 1))
cols=$(head -1 "$dir/summary.dat" | wc -w)
if [ "$rows" -gt 0 ]; then
	gnuplot <<GP
set terminal png size 1150,$((200 + 26 * rows)) noenhanced
set output "$out/summary.png"
set title "cowtable relative to each peer: the peer's cost / cowtable's\n(ns per page or operation; memory rows: bytes; p50/p99/p99.9 rows: latency)\nright of the 1x line cowtable is faster (or smaller), left of it slower"
set datafile missing "n/a"
set logscale x
set xlabel "peer cost / cowtable cost (log scale)"
set yrange [$rows + 0.5 : 0.5]
set ytics scale 0 font ",9"
set grid xtics
set key outside right top vertical font ",10"
set arrow from 1, graph 0 to 1, graph 1 nohead lw 2 lc rgb "black"
set linetype 1 lc rgb "#1b9e77" pt 7
set linetype 2 lc rgb "#d95f02" pt 5
set linetype 3 lc rgb "#7570b3" pt 9
set linetype 4 lc rgb "#e7298a" pt 11
set linetype 5 lc rgb "#66a61e" pt 13
set linetype 6 lc rgb "#e6ab02" pt 7
set linetype 7 lc rgb "#a6761d" pt 5
set linetype 8 lc rgb "#666666" pt 9
set linetype 9 lc rgb "#1f78b4" pt 11
set linetype 10 lc rgb "#b2182b" pt 13
set linetype 11 lc rgb "#000000" pt 3
plot for [i=3:$cols] "$dir/summary.dat" using i:1:ytic(2) with points ps 1.4 lt (i - 2) title columnheader(i)
GP
fi
