module krillbench

go 1.19
