module sluice.dev/bench/pipe_echo

go 1.23
