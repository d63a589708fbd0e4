# Distribution of the clock error in chosen runs (every member's estimate
# every 20 ms, after the warm-up).
load here."/common.gp"
set output outdir."/".out
set title "Clock error |estimate - true session time|"
set xlabel "microseconds"
set ylabel "share of samples at most x"
set logscale x
set yrange [0:1.02]
set key outside right top
plot for [i=1:words(runs)] datadir."/clock-".word(runs, i).".dat" using 1:2 with lines lw 2 title word(runs, i)
