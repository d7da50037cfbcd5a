#!/usr/bin/env bash
# The exec runtime with function `cat`: invocations/s, three lines side by side:
#   baseline  bench_spawn_baseline: N threads of posix_spawnp + pipes + waitpid
#   runtime   bench_exec: workers::ExecRuntime driven directly (like the dispatcher)
#   engine    `sluice run` end to end: COUNT events pre-published to the local queue
#             with `sluice publish --count`, timed from the start of `sluice run` until
#             sluice_invocations_total{outcome="success"} reaches COUNT (polled on
#             /metrics every 100 ms); the queue's lag is checked to be 0 afterwards.
#   rt-mt     (information) bench_exec with ExecOptions::io_threads = CONCURRENCY; the
#             engine always uses the default, 1 (workers/registry.cc), so this line
#             shows what spawning on more than one thread would give.
# Each line uses the same concurrency, count and 100-byte payload.
#
# Environment: CONCURRENCY (4), COUNT (5000), ROUNDS (3), IO_THREADS_ALT (CONCURRENCY;
# 0 = skip the rt-mt line), WAIT_QUIET/QUIET_BUSY/QUIET_TIMEOUT (lib.sh). Each round
# runs every line once, after waiting for a quiet machine; ratios are taken within a
# round and the median over the rounds is reported.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CONCURRENCY=${CONCURRENCY:-4}
COUNT=${COUNT:-5000}
ROUNDS=${ROUNDS:-3}
IO_THREADS_ALT=${IO_THREADS_ALT:-$CONCURRENCY}
BASELINE_BIN=$BUILD/bench/bench_spawn_baseline
EXEC_BIN=$BUILD/bench/bench_exec

need curl; need python3
for b in "$SLUICE" "$BASELINE_BIN" "$EXEC_BIN"; do
  [[ -x "$b" ]] || die "$b not built (cmake --build build --target sluice bench_spawn_baseline bench_exec)"
done
bench_init exec
cd "$BENCH_TMP"

PAYLOAD=$(python3 -c 'print("".join(chr(97 + i % 26) for i in range(99)))')  # + newline = 100 B
MAX_SECONDS=300
echo "# exec_runtime: function cat, concurrency $CONCURRENCY, $COUNT invocations per line, 100-byte payload, $ROUNDS round(s)"
echo "# before: $(load_note)"

# e2e_round R: sets E_RATE (inv/s) and E_LAG (lag after the run).
e2e_round() {
  local dir="$BENCH_TMP/e2e-$1" mport start now done=0 deadline secs
  mkdir -p "$dir"
  mport=$(free_port)
  cat >"$dir/sluice.yaml" <<EOF
brokers:
  local: { kind: local, path: ./data/q.db, partitions: 4 }
metrics: { listen: 127.0.0.1:$mport }
engine: { drain_timeout: 5s }
functions:
  - name: cat
    runtime: exec
    command: [cat]
    concurrency: $CONCURRENCY
    subscribe: [{ broker: local, topic: work, ordering: none }]
EOF
  "$SLUICE" publish -c "$dir/sluice.yaml" work "$PAYLOAD" --count "$COUNT" >/dev/null
  [[ $(topic_lag "$dir/sluice.yaml" work) == "$COUNT" ]] || die "pre-publish: lag is not $COUNT"
  start=$(date +%s.%N)
  "$SLUICE" run -c "$dir/sluice.yaml" >"$dir/sluice.log" 2>&1 &
  local pid=$!; track $pid
  deadline=$((SECONDS + MAX_SECONDS))
  while ((SECONDS < deadline)); do
    done=$(curl -s "http://127.0.0.1:$mport/metrics" 2>/dev/null |
      awk '/^sluice_invocations_total\{/ && /outcome="success"/ {s += $NF} END {print s + 0}' || true)
    ((done >= COUNT)) && break
    sleep 0.1
  done
  now=$(date +%s.%N)
  secs=$(awk -v a="$start" -v b="$now" 'BEGIN {print b - a}')
  stop_pid "$pid" || echo "  sluice exited with status $?"
  ((done >= COUNT)) || die "engine: only $done of $COUNT invocations within ${MAX_SECONDS}s"
  E_RATE=$(awk -v n="$COUNT" -v s="$secs" 'BEGIN {printf "%.1f", n / s}')
  E_LAG=$(topic_lag "$dir/sluice.yaml" work)
}

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

printf "%-6s %-9s %10s %8s\n" round line "inv/s" errors
B=(); R=(); M=(); E=(); RR=(); RM=(); RE=(); LAGS=0
for r in $(seq 1 "$ROUNDS"); do
  wait_quiet
  out=$("$BASELINE_BIN" --concurrency "$CONCURRENCY" --count "$COUNT" --max-seconds $MAX_SECONDS)
  B+=("$(field inv_per_s <<<"$out")")
  printf "%-6s %-9s %10s %8s\n" "$r" baseline "${B[-1]}" "$(field errors <<<"$out")"
  out=$("$EXEC_BIN" --concurrency "$CONCURRENCY" --count "$COUNT" --max-seconds $MAX_SECONDS)
  R+=("$(field inv_per_s <<<"$out")")
  printf "%-6s %-9s %10s %8s\n" "$r" runtime "${R[-1]}" "$(field errors <<<"$out")"
  if ((IO_THREADS_ALT > 0)); then
    out=$("$EXEC_BIN" --concurrency "$CONCURRENCY" --count "$COUNT" --max-seconds $MAX_SECONDS --io-threads "$IO_THREADS_ALT")
    M+=("$(field inv_per_s <<<"$out")")
    printf "%-6s %-9s %10s %8s\n" "$r" rt-mt "${M[-1]}" "$(field errors <<<"$out")"
  fi
  e2e_round "$r"
  E+=("$E_RATE"); LAGS=$((LAGS + E_LAG))
  printf "%-6s %-9s %10s %8s\n" "$r" engine "$E_RATE" "lag=$E_LAG"
  RR+=("$(ratio "${R[-1]}" "${B[-1]}")"); RE+=("$(ratio "$E_RATE" "${B[-1]}")")
  ((IO_THREADS_ALT > 0)) && RM+=("$(ratio "${M[-1]}" "${B[-1]}")")
  echo "       ratios: runtime ${RR[-1]}  engine ${RE[-1]}$( ((IO_THREADS_ALT > 0)) && echo "  rt-mt ${RM[-1]}")"
done
echo "# after: $(load_note)"

b=$(printf "%s\n" "${B[@]}" | median)
rt=$(printf "%s\n" "${R[@]}" | median)
e=$(printf "%s\n" "${E[@]}" | median)
m=$( ((${#M[@]})) && printf "%s\n" "${M[@]}" | median || echo 0)
rr=$(printf "%s\n" "${RR[@]}" | median); re=$(printf "%s\n" "${RE[@]}" | median)
rmt=$( ((${#RM[@]})) && printf "%s\n" "${RM[@]}" | median || echo 0)
echo
echo "baseline (posix_spawnp + pipes):   $b inv/s"
echo "(figures: median of the rounds; ratios: median of the rounds' ratios)"
echo "sluice ExecRuntime (direct):       $rt inv/s   ratio ${rr}x   target >= 0.9x"
((IO_THREADS_ALT > 0)) &&
  echo "ExecRuntime, io_threads=$IO_THREADS_ALT:        $m inv/s   ratio ${rmt}x   (the engine gives a function min(concurrency, 4) io threads)"
echo "sluice run, end to end:            $e inv/s   ratio ${re}x   (lag after runs: $LAGS)"
echo "RESULT exec_runtime baseline=$b runtime=$rt engine=$e ratio_runtime=$rr runtime_mt=$m ratio_runtime_mt=$rmt ratio_engine=$re lag=$LAGS"
