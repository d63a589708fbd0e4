# One run around its fault: deliveries per 100 ms at every member, and L.
# Called with out, run, fault, fbegin and fend (s from the start of the plot).
load here."/common.gp"
set output outdir."/".out
set title run.": deliveries per 100 ms at every member around the ".fault
set xlabel "seconds"
set ylabel "deliveries per 100 ms (each member a line; none: at the bottom)"
set logscale y
set yrange [0.5:*]
set y2label "L, ms"
set y2tics
set ytics nomirror
set key top right inside
set object 1 rect from fbegin, graph 0 to fend, graph 1 fc rgb "#f3d6d6" fs solid 0.5 noborder behind
stats datadir."/timeline-".run.".dat" using 3 nooutput
nblocks = STATS_blocks
plot for [i=0:nblocks-1] datadir."/timeline-".run.".dat" index i using 2:($3 > 0 ? $3 : 0.5) with steps lc rgb "#1b9e77" lw 1 notitle, \
  datadir."/horizon-".run.".dat" using 1:2 axes x1y2 with lines ls 2 title "L", \
  NaN with lines lc rgb "#1b9e77" title "deliveries (members)"
