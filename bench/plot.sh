#!/bin/sh
# Plots the comparison table of a cowbench run (results/bench.txt) with gnuplot:
# one PNG per workload, ns per page or operation for each structure.
set -eu
dir=${1:-results}
txt="$dir/bench.txt"
awk '/Lower is better/ {on = 1; next} on && /^workload/ {n = NF; for (i = 2; i <= NF; i++) peer[i] = $i; next}
     on && NF == 0 {exit}
     on {name = $1; gsub(/[^A-Za-z0-9_+.-]/, "_", name); if ($2 == "x" || $2 ~ /^x[0-9]/) {name = name "_" $2; s = 3} else s = 2;
         f = "'"$dir"'/" name ".dat"; for (i = s; i <= NF; i++) print peer[i - s + 2], $i > f; close(f)}' "$txt"
for dat in "$dir"/*.dat; do
	[ -e "$dat" ] || continue
	name=$(basename "$dat" .dat)
	unit="ns per page or operation (lower is better)"
	case "$name" in memory*) unit="bytes per tracked page (lower is better)" ;; esac
	gnuplot <<GP
set terminal png size 900,480 noenhanced
set output "$dir/$name.png"
set title "$name"
set style data histogram
set style fill solid 0.8
set boxwidth 0.7
set xtics rotate by -30
set ylabel "$unit"
set logscale y
set grid ytics
plot "$dat" using 2:xtic(1) notitle lc rgb "#3070b0"
GP
done
