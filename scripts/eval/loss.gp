# Loss at 50 +/- 10 ms: on time at the worst member, and how late the late
# ones were.
load here."/common.gp"
set output outdir."/loss.png"
set multiplot layout 2,1 title "Loss (each transmission of a segment lost with this chance), 50 +/- 10 ms"
set xlabel "loss, %"
set xrange [-0.2:5.2]
set ylabel "on time, worst member, %"
set key bottom left inside
f8 = datadir."/loss-m8.dat"
f16 = datadir."/loss-m16.dat"
s3 = datadir."/loss-s3.dat"
plot \
  f8 using 1:2 with linespoints ls 1 title "8 members", \
  f16 using 1:2 with linespoints ls 2 title "16 members", \
  s3 using 1:2 with linespoints ls 3 title "3 scsynth", \
  99.9 with lines ls 5 title "99.9 %"
set ylabel "lateness, ms"
set key top left inside
plot \
  f8 using 1:3 with linespoints ls 1 title "p99, 8", \
  f8 using 1:4 with linespoints ls 1 dt 2 title "max, 8", \
  f16 using 1:3 with linespoints ls 2 title "p99, 16", \
  f16 using 1:4 with linespoints ls 2 dt 2 title "max, 16", \
  0 with lines ls 5 notitle
unset multiplot
