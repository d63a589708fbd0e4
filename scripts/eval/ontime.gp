# On time at the worst member, against the one-way delay of every link
# (steady runs: jitter about a fifth of the delay, no loss). The runner calls it
# with here, datadir and outdir set (gnuplot -e).
load here."/common.gp"
set output outdir."/ontime.png"
set title "Events on time at the worst member (steady networks)"
set xlabel "one-way delay of each link, ms (jitter 0, 5, 10, 20, 40 ms)"
set ylabel "on time at the worst member, %"
set xrange [-10:210]
set yrange [*:100.2]
set key bottom left inside
plot \
  datadir."/steady-m3.dat" using 1:2 with linespoints ls 6 title "3 tutti members", \
  datadir."/steady-m8.dat" using 1:2 with linespoints ls 1 title "8 tutti members", \
  datadir."/steady-m16.dat" using 1:2 with linespoints ls 2 title "16 tutti members", \
  datadir."/steady-s3.dat" using 1:2 with linespoints ls 3 title "3 scsynth (plugin, 5 ms lead)", \
  99.9 with lines ls 5 title "99.9 %"
