#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Plots a cowbench run (the tables of results/bench.txt) with gnuplot:
#   summary.png      cowtable's speed relative to each peer for every workload,
#                    log scale, 1x line (right of it cowtable is faster);
#   <workload>.png   ns per page or operation (or bytes) of each structure,
#                    cowtable's bar highlighted, linux-fork's in grey, and
#                    the range of the repetitions (lowest to highest) as
#                    an error bar;
#   is_cow_dense_by_size.png  the lookup in a dense region against the
#                    region's size (256 MiB to 16 or 64 GiB), one line per
#                    structure: where each falls off.
#   sh bench/plot.sh [results-dir [png-dir]]     (default: results results)
# `sh bench/plot.sh results docs/bench` refreshes the documentation's figures.
set -eu
dir=${1:-results}
out=${2:-$dir}
txt="$dir/bench.txt"
mkdir -p "$out"
rm -f "$dir"/*.dat "$dir"/is_cow_dense_by_size.series "$dir"/is_cow_dense_by_size.peers

# A table line: the workload's words, then one cell per column: a value
# (with "±h%" after it when there were repetitions: half their range, relative
# to the value), a range lo..hi (the range table), n/a, FAILED or skipped.
# The name ends at the first cell.
split='function is_cell(t) { return t ~ /^[0-9.]+x?$/ || t ~ /^[0-9.e+-]+[.][.][0-9.e+-]+$/ ||
                                t == "n/a" || t == "FAILED" || t == "skipped" }
       function split_row(   i) { name = $1; s = 2
         while (s <= NF && !is_cell($s)) { name = name "_" $s; s++ }
         gsub(/[^A-Za-z0-9_+.-]/, "_", name) }'

# Per-workload data: peer, value, colour, lowest and highest repetition; and
# the dense-region series, one block per peer: size in GiB, value, lowest,
# highest.  The first pass reads the range table, the second the costs.
awk "$split"'
     FNR == NR {
         if (/^range of the repetitions/) {r = 1; next}
         if (r && /^workload/) {for (i = 2; i <= NF; i++) rpeer[i - 1] = $i; next}
         if (r && NF == 0) r = 0
         if (r) {split_row()
                 for (i = s; i <= NF; i++) if (split($i, ab, /[.][.]/) == 2) {
                     lo[name, rpeer[i - s + 1]] = ab[1]; hi[name, rpeer[i - s + 1]] = ab[2]}}
         next}
     /Lower is better/ {on = 1; next}
     on && /^workload/ {for (i = 2; i <= NF; i++) peer[i - 1] = $i; npeer = NF - 1; next}
     on && NF == 0 {exit}
     on {split_row(); f = "'"$dir"'/" name ".dat"
         k = 0
         for (i = s; i <= NF; i++) {
             if ($i ~ /^±/) {h = $i; sub(/^±/, "", h); sub(/%$/, "", h); spread[k] = h / 100; continue}
             k++; cell[k] = $i; spread[k] = 0 }
         series = name ~ /^is_cow_dense_[0-9]+[MG]_x1$/
         if (series) {gib = name; sub(/^is_cow_dense_/, "", gib); sub(/[MG]_x1$/, "", gib)
                      if (name ~ /M_x1$/) gib /= 1024}
         for (j = 1; j <= k; j++) {
             if (cell[j] !~ /^[0-9.]+$/) continue
             p = peer[j]; v = cell[j]
             if ((name, p) in lo) {l = lo[name, p]; u = hi[name, p]}
             else {l = v * (1 - spread[j]); u = v * (1 + spread[j])}
             c = p == "cowtable" ? "0xd95f02" : p == "linux-fork" ? "0x999999" : "0x3070b0"
             print p, v, c, l, u > f
             if (series) pts[p] = pts[p] gib " " v " " l " " u "\n" }
         close(f)}
     END {n = 0
          for (j = 1; j <= npeer; j++) if (pts[peer[j]] != "") {
              if (n++) print "\n" > "'"$dir"'/is_cow_dense_by_size.series"
              printf "%s", pts[peer[j]] > "'"$dir"'/is_cow_dense_by_size.series"
              print peer[j] > "'"$dir"'/is_cow_dense_by_size.peers" }}' "$txt" "$txt"

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
	memory_empty) unit="bytes of an empty table and one context (lower is better)" ;;
	memory*) unit="bytes per tracked page (lower is better)" ;;
	cow_fault*) unit="ns per release + mark pair (lower is better)" ;;
	*_p50 | *_p99 | *_p99.9) unit="ns of one operation (lower is better)" ;;
	esac
	gnuplot <<GP
set terminal png size 900,480 noenhanced
set output "$out/$name.png"
set title "$name\n(median of the repetitions; bar: their range)"
set style fill solid 0.85
set boxwidth 0.7
set xtics rotate by -30
set ylabel "$unit"
set logscale y
set grid ytics
set offsets 0.5, 0.5, graph 0.08, 0
plot "$dat" using 0:2:3:xtic(1) with boxes lc rgb variable notitle, \
     "" using 0:4:(0):(\$5 - \$4) with vectors heads size 0.08,90 lc rgb "black" notitle, \
     "" using 0:5:(\$2 >= 100 ? sprintf("%.0f", \$2) : sprintf("%.3g", \$2)) \
        with labels offset 0,0.7 font ",8" notitle
GP
done

# Lookup cost against region size, one line per structure.  (The printf
# arguments are in parentheses: a bare ">" there is a redirection.)
if [ -s "$dir/is_cow_dense_by_size.peers" ]; then
	plots=$(awk -v f="$dir/is_cow_dense_by_size.series" '
	    {c = $1 == "cowtable" ? "#d95f02" : $1 == "flat-array" ? "#000000" : ""
	     printf "%s\"%s\" index %d using 1:2:3:4 with yerrorlines lw %d pt 7 ps 0.9 %s title \"%s\"",
	            (NR > 1 ? ", " : ""), f, NR - 1, ($1 == "cowtable" ? 3 : 1),
	            (c != "" ? "lc rgb \"" c "\"" : "lt " NR), $1}' "$dir/is_cow_dense_by_size.peers")
	# To 16 GiB, or 64 GiB when a --long run measured it.
	xmax=$(awk '$1 > 16 {big = 1} END {print big ? 80 : 20}' "$dir/is_cow_dense_by_size.series")
	gnuplot <<GP
set terminal png size 1000,600 noenhanced
set output "$out/is_cow_dense_by_size.png"
set title "is_cow in a dense region (marked by range operations) against its size\nmedian of the repetitions; bars: their range"
set logscale xy
set xtics ("256 MiB" 0.25, "1 GiB" 1, "4 GiB" 4, "16 GiB" 16, "64 GiB" 64)
set xrange [0.2:$xmax]
set xlabel "region size (4 KiB pages: 64 Ki to 16 Mi)"
set ylabel "ns per lookup (log scale, lower is better)"
set grid xtics ytics
set key outside right top vertical font ",10"
set linetype 1 lc rgb "#1b9e77"
set linetype 2 lc rgb "#7570b3"
set linetype 3 lc rgb "#e7298a"
set linetype 4 lc rgb "#66a61e"
set linetype 5 lc rgb "#e6ab02"
set linetype 6 lc rgb "#a6761d"
set linetype 7 lc rgb "#666666"
set linetype 8 lc rgb "#1f78b4"
set linetype 9 lc rgb "#b2182b"
set linetype 10 lc rgb "#17becf"
plot $plots
GP
fi

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
