#!/usr/bin/env bash
# HTTP ingress: requests/s of POST /topics/bench into sluice's local queue (durable,
# group-committed; no function subscribed, so this is pure ingress), beside a
# minimal Node.js server that stores nothing (baseline_http_server.js), both driven
# by the same wrk command in the same run. Afterwards every 202 is checked against
# the events really stored (`sluice lag`, END column).
#
# Environment: THREADS (2), CONNECTIONS (64), DURATION (10s), ROUNDS (3), WARMUP (2s,
# each server, once), IO_THREADS (sluice's http.io_threads; empty = its default),
# WAIT_QUIET/QUIET_BUSY/QUIET_TIMEOUT (lib.sh). Each round runs
# the baseline then sluice, after waiting for a quiet machine; the ratio is taken
# within each round and the median over the rounds is reported.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2s}
IO_THREADS=${IO_THREADS:-}

need wrk; need node; need curl; need python3
[[ -x "$SLUICE" ]] || die "$SLUICE not built (cmake --build build --target sluice)"
bench_init http

SPORT=$(free_port)
BPORT=$(free_port)
while [[ "$BPORT" == "$SPORT" ]]; do BPORT=$(free_port); done
cat >"$BENCH_TMP/sluice.yaml" <<EOF
brokers:
  local: { kind: local, path: ./data/q.db, partitions: 4, topics: [bench] }
http: { listen: 127.0.0.1:$SPORT, max_body: 1MiB${IO_THREADS:+, io_threads: $IO_THREADS} }
engine: { drain_timeout: 5s }
functions: []
EOF
# The same database with a (never run) subscriber, so `sluice lag` shows the topic.
cat >"$BENCH_TMP/count.yaml" <<EOF
brokers:
  local: { kind: local, path: ./data/q.db, partitions: 4 }
functions:
  - { name: counter, command: [cat], subscribe: [{ broker: local, topic: bench }] }
EOF
"$SLUICE" validate -c "$BENCH_TMP/sluice.yaml" >/dev/null
"$SLUICE" validate -c "$BENCH_TMP/count.yaml" >/dev/null

node "$BENCH_DIR/baseline_http_server.js" "$BPORT" >"$BENCH_TMP/node.log" 2>&1 &
NODE_PID=$!; track $NODE_PID
"$SLUICE" run -c "$BENCH_TMP/sluice.yaml" >"$BENCH_TMP/sluice.log" 2>&1 &
SLUICE_PID=$!; track $SLUICE_PID
wait_http "$BPORT" / 10 || die "baseline server did not start: $(cat "$BENCH_TMP/node.log")"
wait_http "$SPORT" /readyz 20 || die "sluice did not start: $(cat "$BENCH_TMP/sluice.log")"

WRK=(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$BENCH_DIR/post.lua")
echo "# http_ingress: ${WRK[*]} http://127.0.0.1:PORT/topics/bench  (100-byte body, $ROUNDS round(s), http.io_threads ${IO_THREADS:-default})"
echo "# before: $(load_note)"

# Latency as printed by wrk (us / ms / s) -> milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0;
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; printf "%.2f", n }'; }

# run_wrk NAME PORT PID: runs wrk, sets W_RPS W_TOTAL W_NON2XX W_ERR W_P50 W_P99 W_CPU.
run_wrk() {
  local out t0 t1 secs
  t0=$(cpu_ticks "$3"); secs=$(date +%s.%N)
  out=$("${WRK[@]}" "http://127.0.0.1:$2/topics/bench")
  t1=$(cpu_ticks "$3"); secs=$(awk -v a="$secs" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
  echo "$out" >>"$BENCH_TMP/wrk-$1.log"
  W_RPS=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  W_TOTAL=$(awk '/requests in/ {print $1}' <<<"$out")
  W_NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out"); W_NON2XX=${W_NON2XX:-0}
  W_ERR=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' <<<"$out"); W_ERR=${W_ERR:-none}
  W_P50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  W_P99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  W_CPU=$(cpu_pct $((t1 - t0)) "$secs")
}

if [[ -n "$WARMUP" && "$WARMUP" != 0 ]]; then
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$BPORT/topics/bench" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$SPORT/topics/bench" >/dev/null
fi

printf "%-6s %-9s %10s %8s %8s %6s %10s %10s %9s\n" round server "req/s" "p50 ms" "p99 ms" "cpu%" "2xx" "stored" "non-2xx"
B_RPS=(); S_RPS=(); S_P50=(); S_P99=(); B_P50=(); B_P99=(); RATIOS=(); CHECK_FAIL=0; ACKED_TOTAL=0; STORED_TOTAL=0
for r in $(seq 1 "$ROUNDS"); do
  wait_quiet
  run_wrk baseline "$BPORT" "$NODE_PID"
  B_RPS+=("$W_RPS"); B_P50+=("$W_P50"); B_P99+=("$W_P99")
  printf "%-6s %-9s %10s %8s %8s %6s %10s %10s %9s\n" "$r" node "$W_RPS" "$W_P50" "$W_P99" "$W_CPU" $((W_TOTAL - W_NON2XX)) - "$W_NON2XX"
  [[ "$W_ERR" == none || "$W_ERR" == "connect 0, read 0, write 0, timeout 0" ]] || echo "  node socket errors: $W_ERR"

  before=$(stored_events "$BENCH_TMP/count.yaml" bench)
  run_wrk sluice "$SPORT" "$SLUICE_PID"
  # Requests cut off by wrk's stop may still be committing: count until it is stable.
  after=$(stored_events "$BENCH_TMP/count.yaml" bench)
  for _ in $(seq 1 50); do
    sleep 0.2
    now=$(stored_events "$BENCH_TMP/count.yaml" bench)
    [[ "$now" == "$after" ]] && break
    after=$now
  done
  acked=$((W_TOTAL - W_NON2XX)); stored=$((after - before))
  S_RPS+=("$W_RPS"); S_P50+=("$W_P50"); S_P99+=("$W_P99")
  ACKED_TOTAL=$((ACKED_TOTAL + acked)); STORED_TOTAL=$((STORED_TOTAL + stored))
  RATIOS+=("$(ratio "$W_RPS" "${B_RPS[-1]}")")
  printf "%-6s %-9s %10s %8s %8s %6s %10s %10s %9s\n" "$r" sluice "$W_RPS" "$W_P50" "$W_P99" "$W_CPU" "$acked" "$stored" "$W_NON2XX"
  [[ "$W_ERR" == none || "$W_ERR" == "connect 0, read 0, write 0, timeout 0" ]] || echo "  sluice socket errors: $W_ERR"
  # Every 202 stored; at most one request per connection stored but cut off unanswered.
  if ((stored < acked || stored - acked > CONNECTIONS)); then
    echo "  CHECK FAILED: $acked 202s but $stored events stored"; CHECK_FAIL=1
  fi
done
echo "# after: $(load_note)"

b=$(printf "%s\n" "${B_RPS[@]}" | median); s=$(printf "%s\n" "${S_RPS[@]}" | median)
sp50=$(printf "%s\n" "${S_P50[@]}" | median); sp99=$(printf "%s\n" "${S_P99[@]}" | median)
bp50=$(printf "%s\n" "${B_P50[@]}" | median); bp99=$(printf "%s\n" "${B_P99[@]}" | median)
rm=$(printf "%s\n" "${RATIOS[@]}" | median)
echo
echo "baseline (node, stores nothing): $b req/s  p50 ${bp50} ms  p99 ${bp99} ms   (median of $ROUNDS)"
echo "sluice (durable local queue):    $s req/s  p50 ${sp50} ms  p99 ${sp99} ms   (median of $ROUNDS)"
echo "ratio sluice/baseline: ${rm}x (median of the rounds' ratios: ${RATIOS[*]})   target >= 1.0x"
echo "stored check: $ACKED_TOTAL 202 responses, $STORED_TOTAL events stored ($((STORED_TOTAL - ACKED_TOTAL)) stored but cut off unanswered at wrk's stop) -> $([[ $CHECK_FAIL == 0 ]] && echo ok || echo FAILED)"
grep -Ei "error|warn" "$BENCH_TMP/sluice.log" | head -5 || true
stop_pid "$SLUICE_PID" || echo "sluice exited with status $?"
# Machine-readable summary for run_all.sh.
echo "RESULT http_ingress baseline=$b sluice=$s ratio=$rm p50_ms=$sp50 p99_ms=$sp99 acked=$ACKED_TOTAL stored=$STORED_TOTAL check=$([[ $CHECK_FAIL == 0 ]] && echo ok || echo failed)"
exit $CHECK_FAIL
