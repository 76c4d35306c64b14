# gnuplot -e "datafile='X-cpu.dat'; outfile='X-cpu.png'; titles='a b c'; n=3" bench/plots/cpu.gp
# datafile: one block per server (separated by two blank lines): connections cpu_us_per_delivery
set terminal pngcairo size 1100,620 noenhanced
set output outfile
set title "Server CPU per delivered event vs connections (broadcast, server on one core)"
set xlabel "connections"
set ylabel "CPU-us per delivery"
set key outside right top
set grid
set yrange [0:*]
plot for [i=0:n-1] datafile index i using 1:2 with linespoints lw 2 lc i+1 pt 7 title word(titles, i+1)
