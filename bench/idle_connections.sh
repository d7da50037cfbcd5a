#!/usr/bin/env bash
# Idle connections: a publisher's latency while IDLE (10,000) idle connections are
# held open on sluice's HTTP port, beside the same publisher with none held, in the
# same run (issue 21: p99 with them held within 2x of none).
#
# The publisher is `wrk -t1 -c4 --latency -s post.lua` on POST /topics/bench (local
# queue, no function subscribed). Each round: publisher alone, then IDLE connections
# opened by hold_idle.py (each sends nothing), checked on sluice_http_connections,
# then the publisher again, then the idle connections closed.
#
# Environment: IDLE (10000), THREADS (1), CONNECTIONS (4), DURATION (10s), ROUNDS (3),
# WAIT_QUIET/QUIET_BUSY/QUIET_TIMEOUT (lib.sh). Needs a hard fd limit of at least
# IDLE + 1024 (`ulimit -Hn`); the script raises the soft limit for itself, sluice and
# the holder.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IDLE=${IDLE:-10000}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-4}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}

need wrk; need curl; need python3
[[ -x "$SLUICE" ]] || die "$SLUICE not built (cmake --build build --target sluice)"
hard=$(ulimit -Hn)
if [[ "$hard" != unlimited ]] && ((hard < IDLE + 1024)); then
  die "hard fd limit $hard < IDLE + 1024 = $((IDLE + 1024)); raise it (ulimit -Hn, LimitNOFILE=) or lower IDLE"
fi
ulimit -n "$hard"
bench_init idle

PORT=$(free_port)
cat >"$BENCH_TMP/sluice.yaml" <<YAML
brokers:
  local: { kind: local, path: ./data/q.db, partitions: 4, topics: [bench] }
http: { listen: 127.0.0.1:$PORT, max_connections: $((IDLE + 1000)), idle_timeout: 1h }
engine: { drain_timeout: 5s }
functions: []
YAML
"$SLUICE" validate -c "$BENCH_TMP/sluice.yaml" >/dev/null
"$SLUICE" run -c "$BENCH_TMP/sluice.yaml" >"$BENCH_TMP/sluice.log" 2>&1 &
SLUICE_PID=$!; track $SLUICE_PID
wait_http "$PORT" /readyz 20 || die "sluice did not start: $(cat "$BENCH_TMP/sluice.log")"

WRK=(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$BENCH_DIR/post.lua")
echo "# idle_connections: ${WRK[*]} http://127.0.0.1:PORT/topics/bench, alone and with $IDLE idle connections held ($ROUNDS round(s))"
echo "# before: $(load_note)"

to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0;
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; printf "%.2f", n }'; }
# run_wrk NAME: sets W_RPS W_P50 W_P99 W_NON2XX.
run_wrk() {
  local out
  out=$("${WRK[@]}" "http://127.0.0.1:$PORT/topics/bench")
  echo "$out" >>"$BENCH_TMP/wrk-$1.log"
  W_RPS=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  W_NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out"); W_NON2XX=${W_NON2XX:-0}
  W_P50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  W_P99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
}
# The open-connection gauge of the HTTP listener.
open_connections() {
  curl -fsS "http://127.0.0.1:$PORT/metrics" |
    awk '/^sluice_http_connections\{listener="http"\}/ {print $2 + 0}'
}

# One short warm-up of the publisher.
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$PORT/topics/bench" >/dev/null

printf "%-6s %-12s %10s %8s %8s %9s\n" round idle "req/s" "p50 ms" "p99 ms" "non-2xx"
N_P99=(); I_P99=(); RATIOS=(); FAIL=0
for r in $(seq 1 "$ROUNDS"); do
  wait_quiet
  run_wrk none
  N_P99+=("$W_P99")
  printf "%-6s %-12s %10s %8s %8s %9s\n" "$r" 0 "$W_RPS" "$W_P50" "$W_P99" "$W_NON2XX"
  ((W_NON2XX == 0)) || FAIL=1

  rm -f "$BENCH_TMP/held"
  python3 "$BENCH_DIR/hold_idle.py" "$PORT" "$IDLE" "$BENCH_TMP/held" 2>>"$BENCH_TMP/hold.log" &
  HOLD_PID=$!; track $HOLD_PID
  for _ in $(seq 1 600); do [[ -s "$BENCH_TMP/held" ]] && break; sleep 0.1; done
  held=$(cat "$BENCH_TMP/held" 2>/dev/null || echo 0)
  open=0
  for _ in $(seq 1 100); do
    open=$(open_connections); ((open >= held)) && break; sleep 0.1
  done
  ((held == IDLE && open >= IDLE)) || { echo "  only $held held / $open open (see $BENCH_TMP/hold.log)"; FAIL=1; }
  run_wrk idle
  I_P99+=("$W_P99")
  RATIOS+=("$(ratio "$W_P99" "${N_P99[-1]}")")
  printf "%-6s %-12s %10s %8s %8s %9s\n" "$r" "$open" "$W_RPS" "$W_P50" "$W_P99" "$W_NON2XX"
  ((W_NON2XX == 0)) || FAIL=1
  stop_pid "$HOLD_PID" || true
  for _ in $(seq 1 100); do (($(open_connections) < 10)) && break; sleep 0.1; done
done
echo "# after: $(load_note)"

n=$(printf "%s\n" "${N_P99[@]}" | median); i=$(printf "%s\n" "${I_P99[@]}" | median)
rm=$(printf "%s\n" "${RATIOS[@]}" | median)
echo
echo "publisher p99, no idle connections:    $n ms   (median of $ROUNDS)"
echo "publisher p99, $IDLE idle connections: $i ms   (median of $ROUNDS)"
echo "ratio idle/none: ${rm}x (median of the rounds' ratios: ${RATIOS[*]})   target <= 2.0x"
((FAIL == 0)) || { echo "CHECK FAILED: non-2xx answers or idle connections not all held"; exit 1; }
