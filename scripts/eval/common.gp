# Shared look of the evaluation's plots (loaded by the others).
set terminal pngcairo size 900,560 enhanced font "DejaVu Sans,11" noenhanced
set grid lc rgb "#dddddd"
set key outside right top
set style line 1 lc rgb "#1b9e77" lw 2 pt 7 ps 1.1
set style line 2 lc rgb "#d95f02" lw 2 pt 5 ps 1.1
set style line 3 lc rgb "#7570b3" lw 2 pt 9 ps 1.2
set style line 4 lc rgb "#e7298a" lw 2 pt 11 ps 1.2
set style line 5 lc rgb "#666666" lw 1.5 dt 2
set style line 6 lc rgb "#66a61e" lw 2 pt 13 ps 1.1
