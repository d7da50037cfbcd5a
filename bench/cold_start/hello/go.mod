module sluice.dev/bench/cold_start_hello

go 1.23
