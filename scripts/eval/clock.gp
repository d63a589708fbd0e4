# Clock error against the true session time: at 50 ms with more and more
# jitter (8 members), and over the delay sweep per session size.
load here."/common.gp"
set output outdir."/clock.png"
set multiplot layout 1,2 title "Clock offset error |estimate - true session time|"
set key top left inside
set ylabel "microseconds"
set logscale y
set xlabel "jitter at 50 ms one-way, ms (8 members)"
j8 = datadir."/jitter-m8.dat"
plot \
  j8 using 1:2 with linespoints ls 1 title "p50", \
  j8 using 1:3 with linespoints ls 2 title "p99", \
  j8 using 1:4 with linespoints ls 3 title "max", \
  1000 with lines ls 5 title "1 ms"
set xlabel "one-way delay, ms (jitter 0, 5, 10, 20, 40 ms): p99"
plot \
  datadir."/steady-m3.dat" using 1:8 with linespoints ls 6 title "3 members", \
  datadir."/steady-m8.dat" using 1:8 with linespoints ls 1 title "8 members", \
  datadir."/steady-m16.dat" using 1:8 with linespoints ls 2 title "16 members", \
  datadir."/steady-s3.dat" using 1:8 with linespoints ls 3 title "3 scsynth", \
  1000 with lines ls 5 title "1 ms"
unset multiplot
