# Lateness distributions of chosen runs (all members' deliveries after the
# warm-up): the share of deliveries later than x. Negative lateness is time
# to spare. Called with out and runs (ids separated by spaces).
load here."/common.gp"
set output outdir."/".out
set title "Lateness: share of deliveries later than x"
set xlabel "lateness = delivery - event time, ms (negative: early)"
set ylabel "share of deliveries later than x"
set logscale y
set yrange [1e-5:1.2]
set key outside right top
set arrow 1 from 0, graph 0 to 0, graph 1 nohead ls 5
plot for [i=1:words(runs)] datadir."/lateness-".word(runs, i).".dat" using 1:(1-$2 > 1e-9 ? 1-$2 : NaN) with lines lw 2 title word(runs, i)
