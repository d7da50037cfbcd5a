#!/usr/bin/env bash
# Memory under a backlog: the RSS of `sluice run` while BACKLOG (1,000,000) small
# events wait in the local queue for a slow function (`sleep 0.05`, concurrency 4),
# sampled every second for SAMPLE_SECONDS (20) from /proc/PID/status, beside the
# RSS of the same engine idle on an empty queue (the baseline). The claim: RSS is
# bounded by the in-flight budget (max(2*concurrency, 256) events and
# max_inflight_bytes per function), not by the backlog.
#
# Environment: BACKLOG (1000000), BATCH (100000 per `sluice publish --count`),
# SAMPLE_SECONDS (20), IDLE_SECONDS (5), CONCURRENCY (4), WAIT_QUIET (lib.sh), COMMAND (the function's
# command as a YAML flow list, default [sleep, "0.05"]; [cat] drains the backlog as
# fast as the exec runtime can, to tell a leak per event from caches filling up).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BACKLOG=${BACKLOG:-1000000}
BATCH=${BATCH:-100000}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-20}
IDLE_SECONDS=${IDLE_SECONDS:-5}
CONCURRENCY=${CONCURRENCY:-4}
COMMAND=${COMMAND:-'[sleep, "0.05"]'}

need curl; need python3
[[ -x "$SLUICE" ]] || die "$SLUICE not built (cmake --build build --target sluice)"
bench_init backlog

# write_config DIR METRICS_PORT
write_config() {
  mkdir -p "$1"
  cat >"$1/sluice.yaml" <<EOF
brokers:
  local: { kind: local, path: ./data/q.db, partitions: 4 }
metrics: { listen: 127.0.0.1:$2 }
engine: { drain_timeout: 2s }
functions:
  - name: slow
    runtime: exec
    command: $COMMAND
    concurrency: $CONCURRENCY
    subscribe: [{ broker: local, topic: backlog, ordering: none }]
EOF
}

# sample PID SECONDS: one RSS sample (kB) per second; sets S_MIN S_MAX S_LAST S_HWM S_SERIES.
sample() {
  local pid=$1 v i
  S_SERIES=(); S_MIN=; S_MAX=0
  for ((i = 0; i < $2; i++)); do
    sleep 1
    v=$(rss_kb "$pid"); [[ -n "$v" ]] || die "sluice (pid $pid) is gone"
    S_SERIES+=("$v")
    ((v > S_MAX)) && S_MAX=$v
    [[ -z "$S_MIN" ]] || ((v < S_MIN)) && S_MIN=$v
  done
  S_LAST=$v
  S_HWM=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
}

invocations() {
  curl -s "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk '/^sluice_invocations_total\{/ {s += $NF} END {print s + 0}' || true
}

mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

echo "# backlog_memory: $BACKLOG events of 100 B waiting, function $COMMAND x $CONCURRENCY, RSS sampled every 1 s for ${SAMPLE_SECONDS}s"
wait_quiet
echo "# before: $(load_note)"

# 1. The baseline: the same engine, idle, on an empty queue.
IPORT=$(free_port)
write_config "$BENCH_TMP/idle" "$IPORT"
"$SLUICE" run -c "$BENCH_TMP/idle/sluice.yaml" >"$BENCH_TMP/idle/sluice.log" 2>&1 &
IDLE_PID=$!; track $IDLE_PID
wait_http "$IPORT" /metrics 20 || die "idle sluice did not start: $(cat "$BENCH_TMP/idle/sluice.log")"
sample "$IDLE_PID" "$IDLE_SECONDS"
I_MIN=$S_MIN I_MAX=$S_MAX I_LAST=$S_LAST I_HWM=$S_HWM
stop_pid "$IDLE_PID" || echo "idle sluice exited with status $?"
echo "idle (empty queue):  RSS min $(mb "$I_MIN") MB, max $(mb "$I_MAX") MB, last $(mb "$I_LAST") MB, peak (VmHWM) $(mb "$I_HWM") MB"

# 2. Fill the backlog (no engine running).
BPORT=$(free_port)
write_config "$BENCH_TMP/backlog" "$BPORT"
PAYLOAD=$(python3 -c 'print("".join(chr(97 + i % 26) for i in range(100)))')
t0=$(date +%s.%N)
left=$BACKLOG
while ((left > 0)); do
  n=$((left < BATCH ? left : BATCH))
  "$SLUICE" publish -c "$BENCH_TMP/backlog/sluice.yaml" backlog "$PAYLOAD" --count "$n" >/dev/null
  left=$((left - n))
done
t1=$(date +%s.%N)
LAG0=$(topic_lag "$BENCH_TMP/backlog/sluice.yaml" backlog)
[[ "$LAG0" == "$BACKLOG" ]] || die "backlog: lag is $LAG0, expected $BACKLOG"
DB_MB=$(du -sm "$BENCH_TMP/backlog/data" | cut -f1)
echo "backlog filled: $BACKLOG events in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s with 'sluice publish --count $BATCH' batches; database ${DB_MB} MB"

# 3. The engine on the backlog.
"$SLUICE" run -c "$BENCH_TMP/backlog/sluice.yaml" >"$BENCH_TMP/backlog/sluice.log" 2>&1 &
RUN_PID=$!; track $RUN_PID
wait_http "$BPORT" /metrics 20 || die "sluice did not start: $(cat "$BENCH_TMP/backlog/sluice.log")"
sample "$RUN_PID" "$SAMPLE_SECONDS"
DONE=$(invocations "$BPORT")
echo "backlog run, RSS per second (MB): $(for v in "${S_SERIES[@]}"; do printf "%s " "$(mb "$v")"; done)"
echo "backlog run:         RSS min $(mb "$S_MIN") MB, max $(mb "$S_MAX") MB, last $(mb "$S_LAST") MB, peak (VmHWM) $(mb "$S_HWM") MB; $DONE invocations done"
stop_pid "$RUN_PID" || echo "sluice exited with status $?"
LAG1=$(topic_lag "$BENCH_TMP/backlog/sluice.yaml" backlog)
echo "lag: $LAG0 before, $LAG1 after (the backlog is still waiting)"
echo "# after: $(load_note)"
echo "ratio backlog max / idle max: $(ratio "$S_MAX" "$I_MAX")x"
echo "RESULT backlog_memory db_mb=$DB_MB idle_max_kb=$I_MAX idle_last_kb=$I_LAST run_min_kb=$S_MIN run_max_kb=$S_MAX run_last_kb=$S_LAST run_hwm_kb=$S_HWM ratio=$(ratio "$S_MAX" "$I_MAX") invocations=$DONE lag_before=$LAG0 lag_after=$LAG1"
