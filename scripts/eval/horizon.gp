# The L the hub chose against the smallest L that would have sufficed, and
# the acceptance bound 1.2 x (p99.9 delay) + 5 ms, per session size.
load here."/common.gp"
set output outdir."/horizon.png"
set title "Horizon chosen (median over the run) and needed"
set xlabel "one-way delay of each link, ms (jitter 0, 5, 10, 20, 40 ms)"
set ylabel "L, ms"
set xrange [-10:210]
set yrange [0:*]
set key top left inside
f8 = datadir."/steady-m8.dat"
f16 = datadir."/steady-m16.dat"
f3 = datadir."/steady-m3.dat"
s3 = datadir."/steady-s3.dat"
plot \
  f8 using 1:3 with linespoints ls 1 title "L chosen, 8", \
  f8 using 1:4 with points ls 1 pt 6 ps 1.6 title "L needed, 8", \
  f8 using 1:6 with lines ls 1 dt 3 title "1.2 x p99.9 + 5 ms, 8", \
  f16 using 1:3 with linespoints ls 2 title "L chosen, 16", \
  f16 using 1:4 with points ls 2 pt 4 ps 1.6 title "L needed, 16", \
  f16 using 1:6 with lines ls 2 dt 3 title "1.2 x p99.9 + 5 ms, 16", \
  f3 using 1:3 with linespoints ls 6 title "L chosen, 3", \
  f3 using 1:4 with points ls 6 pt 12 ps 1.6 title "L needed, 3", \
  s3 using 1:3 with linespoints ls 3 title "L chosen, 3 scsynth"
