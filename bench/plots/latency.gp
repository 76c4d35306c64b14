# gnuplot -e "datafile='X-latency.dat'; outfile='X-latency.png'; titles='a b c'; n=3" bench/plots/latency.gp
# datafile: one block per server (separated by two blank lines): rate_per_s p50_ms p99_ms
set terminal pngcairo size 1100,620 noenhanced
set output outfile
set title "Publish -> receive latency vs publish rate (unicast, server on one core)"
set xlabel "events published per second"
set ylabel "latency (ms)"
set logscale xy
set key outside right top
set grid
plot for [i=0:n-1] datafile index i using 1:2 with linespoints lw 2 lc i+1 pt 7 title word(titles, i+1)." p50", \
     for [i=0:n-1] datafile index i using 1:3 with linespoints lw 2 lc i+1 pt 5 dt 2 title word(titles, i+1)." p99"
