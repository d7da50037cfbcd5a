#!/usr/bin/env bash
# bench/runtimes: a no-op function on each runtime beside its physical baseline, in
# one run (bench_runtimes, runtimes_bench.cc):
#   exec    ExecRuntime running `true`      vs posix_spawnp(`true`) + pipe + waitpid
#   stdio   StdioRuntime + C++ test worker  vs a bare C++ length-prefixed pipe echo loop
#   http    HttpRuntime + C++ test server   vs a direct Beast keep-alive POST loop to it
#   inproc  InprocRuntime + test library    vs a direct call of sluice_invoke
#   stdio-python, stdio-node, stdio-go
#           StdioRuntime + the SDK no-op example (sdk/<lang>/examples/noop)
#                                           vs a bare pipe echo loop in the same language
#                                              (bench/runtimes/pipe_echo.py, pipe_echo.js,
#                                              pipe_echo/main.go), Invoke-sized frames;
#           one worker process per call in flight, and (with more than one in flight)
#           again on one process (<row>-1p: the protocol's pipelining)
#   http-python
#           HttpRuntime + bench/runtimes/http_upstream.py (python3, stdlib)
#                                           vs a direct Beast keep-alive POST loop to it
# Each round runs every runtime at CONCURRENCIES (default "1 4": one call at a time =
# latency, four in flight = throughput), after waiting for a quiet machine; the median
# per-round figures are reported. A language whose toolchain or SDK install is missing
# (python3 + sdk/python/.venv or protobuf, node + sdk/node/node_modules, go) is skipped
# with a "# <row> skipped: ..." line; `sdk/test.sh` installs the SDKs.
#
# Environment: COUNT (20000), WARMUP (2000), ROUNDS (3), CONCURRENCIES ("1 4"),
# ROWS (all: exec,stdio,stdio-python,stdio-node,stdio-go,http,http-python,inproc).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COUNT=${COUNT:-20000}
WARMUP=${WARMUP:-2000}
ROUNDS=${ROUNDS:-3}
CONCURRENCIES=${CONCURRENCIES:-"1 4"}
ROWS=${ROWS:-all}
BIN=$BUILD/bench/bench_runtimes
[[ -x "$BIN" ]] || die "$BIN not built (cmake --build build --target bench_runtimes)"
bench_init runtimes
cd "$BENCH_TMP"

echo "# runtimes: no-op function, $COUNT invocations per line, $ROUNDS round(s), concurrency $CONCURRENCIES"
for r in $(seq 1 "$ROUNDS"); do
  wait_quiet
  for c in $CONCURRENCIES; do
    "$BIN" --repo "$REPO" --only "$ROWS" --count "$COUNT" --warmup "$WARMUP" \
      --concurrency "$c" --max-seconds 120 \
      | sed "s/^RESULT runtimes /ROUND $r runtimes /" | tee -a rounds.txt
  done
done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
for c in $CONCURRENCIES; do
  for rt in exec stdio stdio-python stdio-node stdio-go stdio-python-1p stdio-node-1p stdio-go-1p \
    http http-python inproc; do
    lines=$(grep " runtimes $rt concurrency=$c " rounds.txt || true)
    [[ -n "$lines" ]] || continue
    med() { echo "$lines" | field "$1" | median; }
    echo "RESULT runtimes_${rt}_c$c base_inv_s=$(med base_inv_s) sluice_inv_s=$(med sluice_inv_s)" \
      "ratio=$(med ratio) base_p50_us=$(med base_p50_us) base_p99_us=$(med base_p99_us)" \
      "p50_us=$(med p50_us) p99_us=$(med p99_us) added_us=$(med added_us)"
  done
done
