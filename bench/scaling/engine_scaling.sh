#!/usr/bin/env bash
# Lag-based scaling on the REAL engine (issue 7), side by side in one run. A burst of
# COUNT (100,000) events of 100 B is pre-published to each of two topics of the local
# queue (4 partitions), `fixed` and `auto` (one topic per run: on the local queue a
# group that has not consumed yet does not hold retention, so a second group on the
# first run's topic would find its events deleted); the function sleeps SLEEP_MS (5)
# ms per event (runtime `inproc` on its thread pool: bench/scaling/sleep_function.c,
# not `inline`), `ordering: none` (an ordered subscription would cap the pool at one
# worker per partition). Then:
#   1. fixed: `sluice run` with concurrency MAX (64) and no `workers:` stanza, on topic
#      `fixed`, watched for HORIZON (60) s or until drained if that is later;
#   2. autoscaled: the same with `workers: { min: 0, max: MAX, target_lag: TARGET_LAG,
#      idle_after: IDLE_AFTER }` on topic `auto`, the same way; then in the same process,
#      on the same topic:
#   3. reaction: REACT_ROUNDS (3) times, once the pool is at zero, one probe event is
#      published; timed from `sluice publish` returning (the event is stored) to the
#      function starting on it (stamped by the function, CLOCK_REALTIME). The lag
#      loop looks every 2 s, so the rounds are published at delays spread evenly
#      over one tick after the pool was seen at zero;
#   4. noisy flat load: NOISE_SECONDS (300) of `sluice publish --count n` every
#      NOISE_PERIOD (0.2) s, n = NOISE_FRACTION (0.5) x the fixed pool's measured
#      throughput x NOISE_PERIOD x U(1 - NOISE_JITTER, 1 + NOISE_JITTER) (0.3);
#      direction changes of the worker count, per 30 s stabilisation window (the
#      autoscaler's scale_down_window, fixed in scaling/).
# Measured from /metrics, scraped every 100 ms (engine_scaling.py sample):
# sluice_workers (pool threads), sluice_workers_desired (the autoscaler's decision),
# sluice_invocations_total, sluice_consumer_lag. Both gauges are refreshed by the
# engine's lag loop, every 2 s. The inproc pool keeps at least one thread, so
# sluice_workers reads 1 while the decision is 0, and it is read right after resize(),
# so on a scale-down it shows the leaving threads until the next tick: worker-seconds
# are given from both gauges.
#   time to first invocation  sluice start -> the function's first call (its stamp)
#   time to drain             sluice start -> success count reaches COUNT (100 ms grain)
#   worker-seconds            the gauge integrated until drained, and over HORIZON s
#   direction changes         up after down or down after up, of each gauge
# Every event is checked: no outcome but success, committed lag 0 at the end.
#
# target_lag: the autoscaler wants ceil(lag / target_lag) workers and looks every 2 s,
# so TARGET_LAG = 2 s / SLEEP_MS = 400 sizes the pool to finish, by the next tick, the
# backlog it saw (a smaller one buys nothing: the next look is 2 s away anyway; a
# larger one queues more per worker). At steady load it means a queueing delay of
# about target_lag x SLEEP_MS = 2 s. COUNT / TARGET_LAG should be >= MAX for the burst
# to reach the full pool (100000 / 400 = 250 >= 64).
#
# Environment: COUNT, MAX, SLEEP_MS, TARGET_LAG, IDLE_AFTER (10s), HORIZON (60),
# DRAIN_SECONDS (300), REACT_ROUNDS, NOISE_SECONDS, NOISE_FRACTION, NOISE_RATE (events/s,
# overrides NOISE_FRACTION), NOISE_PERIOD, NOISE_JITTER, SLEEP_LIB, WAIT_QUIET (lib.sh).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

COUNT=${COUNT:-100000}
MAX=${MAX:-64}
SLEEP_MS=${SLEEP_MS:-5}
TARGET_LAG=${TARGET_LAG:-400}
IDLE_AFTER=${IDLE_AFTER:-10s}
HORIZON=${HORIZON:-60}
DRAIN_SECONDS=${DRAIN_SECONDS:-300}
REACT_ROUNDS=${REACT_ROUNDS:-3}
NOISE_SECONDS=${NOISE_SECONDS:-300}
NOISE_FRACTION=${NOISE_FRACTION:-0.5}
NOISE_RATE=${NOISE_RATE:-}
NOISE_PERIOD=${NOISE_PERIOD:-0.2}
NOISE_JITTER=${NOISE_JITTER:-0.3}
WINDOW=30  # scaling::ScalerConfig::scale_down_window (no config key yet)
SLEEP_LIB=${SLEEP_LIB:-$BUILD/bench/scaling/libbench_scaling_sleep.so}
HELPER="$BENCH_DIR/scaling/engine_scaling.py"

need curl; need python3
[[ -x "$SLUICE" ]] || die "$SLUICE not built (cmake --build build --target sluice)"
[[ -f "$SLEEP_LIB" ]] || die "$SLEEP_LIB not built (cmake --build build --target bench_scaling_sleep)"
bench_init scaling
cd "$BENCH_TMP"

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a - b}'; }
field() { sed -n "s/^\(.* \)\{0,1\}$1=\([^ ]*\).*/\2/p" | tail -1; }
last_sample() { tail -n 1 "$1" 2>/dev/null || true; }

PAYLOAD=$(python3 -c 'print("".join(chr(97 + i % 26) for i in range(100)))')  # 100 B
cat >pub.yaml <<EOF
brokers:
  local: { kind: local, path: ./q.db, partitions: 4 }
functions: []
EOF
# config NAME PORT [WORKERS-LINE]: the function `sleep` on topic NAME, group NAME.
config() {
  cat >"$1.yaml" <<EOF
brokers:
  local: { kind: local, path: ./q.db, partitions: 4, group: $1 }
metrics: { listen: 127.0.0.1:$2 }
engine: { drain_timeout: 5s }
functions:
  - name: sleep
    runtime: inproc
    command: ["$SLEEP_LIB"]
    inline: false
    concurrency: $MAX
    timeout: 30s
    subscribe: [{ broker: local, topic: $1, ordering: none }]
${3:-}
EOF
  "$SLUICE" validate -c "$1.yaml" >/dev/null || die "$1.yaml does not validate"
}
FPORT=$(free_port); APORT=$(free_port)
config fixed "$FPORT"
config auto "$APORT" "    workers: { min: 0, max: $MAX, target_lag: $TARGET_LAG, idle_after: $IDLE_AFTER }"

echo "# engine_scaling: burst of $COUNT x 100 B, function sleeps ${SLEEP_MS} ms (inproc pool); fixed pool of $MAX vs workers { min: 0, max: $MAX, target_lag: $TARGET_LAG, idle_after: $IDLE_AFTER }; horizon ${HORIZON}s"
echo "# before: $(load_note)"
for t in fixed auto; do
  "$SLUICE" publish -c pub.yaml "$t" "$PAYLOAD" --count "$COUNT" >/dev/null
  [[ $(topic_lag "$t.yaml" "$t") == "$COUNT" ]] || die "pre-publish: lag of topic $t is not $COUNT"
done

# start_sluice NAME PORT: starts the sampler, then `sluice run`; sets PID SPID T_START.
# The sampler polls from before the start, so the first sample is taken as soon as
# /metrics answers; the time before it (the engine's start-up) counts no workers.
start_sluice() {
  : >"$1.stamp"
  python3 "$HELPER" sample "$2" sleep "$1.samples" &
  SPID=$!; track $SPID
  sleep 0.5
  T_START=$(now)
  SCALING_STAMP_FILE="$BENCH_TMP/$1.stamp" SCALING_SLEEP_MS="$SLEEP_MS" \
    "$SLUICE" run -c "$1.yaml" >"$1.log" 2>&1 &
  PID=$!; track $PID
}
# wait_success NAME PID N SECONDS: until the success counter reaches N.
wait_success() {
  local deadline=$((SECONDS + $4)) s
  while ((SECONDS < deadline)); do
    kill -0 "$2" 2>/dev/null || die "$1: sluice exited: $(tail -5 "$1.log")"
    s=$(last_sample "$1.samples" | awk '{print $4 + 0}')
    (( ${s:-0} >= $3 )) && return 0
    sleep 0.1
  done
  return 1
}
# wait_until T: sleep until unix time T.
wait_until() { local d; d=$(sub "$1" "$(now)"); awk -v d="$d" 'BEGIN {exit !(d > 0)}' && sleep "$d" || true; }
first_stamp() { awk '$1 == "first" {printf "%.3f\n", $2 / 1000; exit}' "$1.stamp"; }

# ---- 1 + 2: the burst -------------------------------------------------------------
# burst NAME PORT: runs until drained and HORIZON passed; sets B_* figures.
burst() {
  wait_quiet
  echo "# $1: $(load_note)"
  start_sluice "$1" "$2"
  wait_success "$1" "$PID" "$COUNT" "$DRAIN_SECONDS" ||
    echo "# $1: NOT DRAINED within ${DRAIN_SECONDS}s: $(last_sample "$1.samples")"
  wait_until "$(awk -v t="$T_START" -v h="$HORIZON" 'BEGIN {printf "%.3f", t + h}')"
  B_END=$(now)
  local a h
  a=$(python3 "$HELPER" analyze "$1.samples" "$T_START" "$B_END" "$COUNT" "$WINDOW")
  h=$(python3 "$HELPER" analyze "$1.samples" "$T_START" "$(awk -v t="$T_START" -v h="$HORIZON" 'BEGIN {printf "%.3f", t + h}')" "$COUNT" "$WINDOW")
  B_FIRST=$(sub "$(first_stamp "$1")" "$T_START")
  B_DRAIN=$(field drain_t <<<"$a")
  B_WS=$(field ws_drain <<<"$a"); B_WSD=$(field ws_desired_drain <<<"$a")
  B_WSH=$(field ws <<<"$h"); B_WSDH=$(field ws_desired <<<"$h")
  B_CH=$(field changes <<<"$h"); B_CHD=$(field changes_desired <<<"$h")
  B_PEAK=$(field workers_max <<<"$h"); B_OTHER=$(field other <<<"$a")
  B_RATE=$(awk -v n="$COUNT" -v d="$B_DRAIN" -v f="$B_FIRST" 'BEGIN {if (d > f) printf "%.0f", n / (d - f); else print 0}')
  printf "%-10s first %6.2f s  drained %7.2f s (%s ev/s)  worker-s to drain %8s (desired %s)  in %ss %8s (desired %s)  peak %s  changes %s/%s  other outcomes %s\n" \
    "$1" "$B_FIRST" "$B_DRAIN" "$B_RATE" "${B_WS:-n/a}" "${B_WSD:-n/a}" "$HORIZON" "$B_WSH" "$B_WSDH" "$B_PEAK" "$B_CH" "$B_CHD" "$B_OTHER"
}

FAIL=0
burst fixed "$FPORT"
F_FIRST=$B_FIRST F_DRAIN=$B_DRAIN F_WS=$B_WS F_WSH=$B_WSH F_CH=$B_CH F_RATE=$B_RATE F_OTHER=$B_OTHER
stop_pid "$PID" || echo "# fixed: sluice exited with status $?"
stop_pid "$SPID" || true
F_LAG=$(topic_lag fixed.yaml fixed)
echo "# fixed: lag after stop $F_LAG"
[[ "$F_DRAIN" != -1 && "$F_LAG" == 0 && "$F_OTHER" == 0 ]] || { echo "CHECK FAILED: fixed pool lost or failed events"; FAIL=1; }
echo "RESULT scaling_fixed first_s=$F_FIRST drain_s=$F_DRAIN events_per_s=$F_RATE ws_drain=$F_WS ws_horizon=$F_WSH horizon_s=$HORIZON changes=$F_CH lag_after=$F_LAG other=$F_OTHER"

burst auto "$APORT"
A_FIRST=$B_FIRST A_DRAIN=$B_DRAIN A_WS=$B_WS A_WSD=$B_WSD A_WSH=$B_WSH A_WSDH=$B_WSDH A_CH=$B_CH A_CHD=$B_CHD A_PEAK=$B_PEAK A_OTHER=$B_OTHER
A_PID=$PID A_SPID=$SPID A_START=$T_START
echo "RESULT scaling_auto first_s=$A_FIRST drain_s=$A_DRAIN ws_drain=$A_WS ws_desired_drain=$A_WSD ws_horizon=$A_WSH ws_desired_horizon=$A_WSDH horizon_s=$HORIZON peak=$A_PEAK changes=$A_CH changes_desired=$A_CHD other=$A_OTHER"
grep -E "workers [0-9]+ -> [0-9]+" auto.log | sed 's/^/#   /' | head -20 || true

# ---- 3: reaction to a backlog from zero -------------------------------------------
# wait_zero SECONDS SINCE: until a sample taken after unix time SINCE shows
# sluice_workers_desired 0 (a sample from before the last probe ran may still show
# the zero that probe found).
wait_zero() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    last_sample auto.samples | awk -v s="$2" '$1 > s + 0.05 && $3 == 0 {ok = 1} END {exit !ok}' && return 0
    sleep 0.1
  done
  return 1
}
IDLE_S=$(awk -v d="$IDLE_AFTER" 'BEGIN {n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; print int(n) + 1}')
REACTS=(); REACTS0=(); at=$(now)
for r in $(seq 1 "$REACT_ROUNDS"); do
  if ! wait_zero $((IDLE_S + WINDOW + 60)) "$at"; then
    echo "# react: the pool did not scale to zero: $(last_sample auto.samples)"; break
  fi
  # Where in the 2 s lag tick the probe lands decides the reaction (the tick that
  # scaled to zero was just seen), so the rounds are spread over the tick.
  sleep "$(awk -v r="$r" -v n="$REACT_ROUNDS" 'BEGIN {printf "%.3f", 0.3 + 2 * (r - 0.5) / n}')"
  t0=$(now)
  "$SLUICE" publish -c pub.yaml auto "probe-$r" >/dev/null
  t1=$(now)
  deadline=$((SECONDS + 60))
  while (( $(grep -c '^probe ' auto.stamp || true) < r && SECONDS < deadline )); do sleep 0.02; done
  at=$(awk -v r="$r" '$1 == "probe" && ++n == r {printf "%.3f\n", $2 / 1000}' auto.stamp)
  [[ -n "$at" ]] || { echo "# react $r: the probe was not run within 60 s"; FAIL=1; break; }
  REACTS+=("$(sub "$at" "$t1")"); REACTS0+=("$(sub "$at" "$t0")")
  echo "# react $r: pool at 0, probe stored -> invoked in ${REACTS[-1]} s (${REACTS0[-1]} s from starting sluice publish)"
done
REACT_MED=$( ((${#REACTS[@]})) && printf "%s\n" "${REACTS[@]}" | median || echo n/a)
REACT_MAX=$( ((${#REACTS[@]})) && printf "%s\n" "${REACTS[@]}" | sort -g | tail -1 || echo n/a)
echo "RESULT scaling_react rounds=${#REACTS[@]} median_s=$REACT_MED max_s=$REACT_MAX all_s=$(IFS=,; echo "${REACTS[*]}")"

# ---- 4: noisy flat load -----------------------------------------------------------
RATE=${NOISE_RATE:-$(awk -v r="$F_RATE" -v f="$NOISE_FRACTION" 'BEGIN {printf "%.0f", r * f}')}
wait_quiet
echo "# noise: $(load_note)"
echo "# noise: ${NOISE_SECONDS}s at $RATE events/s (+-$(awk -v j="$NOISE_JITTER" 'BEGIN {print j * 100}')% every ${NOISE_PERIOD}s) against the autoscaled pool"
BEFORE=$(last_sample auto.samples | awk '{print $4 + 0}')
L=$(python3 "$HELPER" load "$SLUICE" pub.yaml auto "$RATE" "$NOISE_SECONDS" "$NOISE_PERIOD" "$NOISE_JITTER" "$PAYLOAD")
echo "# noise: $L"
N0=$(field t_start <<<"$L"); N1=$(field t_end <<<"$L"); NPUB=$(field published <<<"$L")
[[ $(field failed <<<"$L") == 0 ]] || { echo "CHECK FAILED: some noise publishes failed"; FAIL=1; }
N=$(python3 "$HELPER" analyze auto.samples "$N0" "$N1" 0 "$WINDOW")
WINDOWS=$(awk -v a="$N0" -v b="$N1" -v w="$WINDOW" 'BEGIN {printf "%.1f", (b - a) / w}')
N_CH=$(field changes <<<"$N"); N_CHD=$(field changes_desired <<<"$N")
N_MW=$(field max_in_window <<<"$N"); N_MWD=$(field max_in_window_desired <<<"$N")
PER_WIN=$(awk -v c="$N_CHD" -v w="$WINDOWS" 'BEGIN {if (w > 0) printf "%.2f", c / w; else print "n/a"}')
N_DONE=$(field success <<<"$N")
echo "noise: desired ${N_CHD} direction changes over $WINDOWS windows of ${WINDOW}s ($PER_WIN per window; most in any ${WINDOW}s: $N_MWD); sluice_workers $N_CH changes (most in any window $N_MW); workers $(field workers_min <<<"$N")..$(field workers_max <<<"$N"), desired $(field desired_min <<<"$N")..$(field desired_max <<<"$N"); lag mean $(field lag_mean <<<"$N") max $(field lag_max <<<"$N"); $N_DONE of $NPUB run during the phase"
grep -E "workers [0-9]+ -> [0-9]+" auto.log | awk -v n="$(grep -cE "workers [0-9]+ -> [0-9]+" auto.log)" 'NR > n - 40' | sed 's/^/#   /' || true
# Everything published must be run and committed.
TOTAL=$((COUNT + ${#REACTS[@]} + NPUB))
wait_success auto "$A_PID" "$TOTAL" 120 || { echo "CHECK FAILED: only $(last_sample auto.samples | awk '{print $4}') of $TOTAL run"; FAIL=1; }
A_OTHER_ALL=$(last_sample auto.samples | awk '{print $5 + 0}')
echo "# after: $(load_note)"
stop_pid "$A_PID" || echo "# auto: sluice exited with status $?"
stop_pid "$A_SPID" || true
A_LAG=$(topic_lag auto.yaml auto)
[[ "$A_LAG" == 0 && "$A_OTHER_ALL" == 0 && "$A_DRAIN" != -1 ]] || { echo "CHECK FAILED: autoscaled pool: lag after $A_LAG, other outcomes $A_OTHER_ALL"; FAIL=1; }
echo "RESULT scaling_noise seconds=$NOISE_SECONDS rate=$RATE published=$NPUB windows=$WINDOWS changes_desired=$N_CHD per_window=$PER_WIN max_in_window_desired=$N_MWD changes_workers=$N_CH max_in_window_workers=$N_MW workers=$(field workers_min <<<"$N")..$(field workers_max <<<"$N") lag_mean=$(field lag_mean <<<"$N") lag_after=$A_LAG"

# ---- verdicts ---------------------------------------------------------------------
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { if (v == "n/a" || v == "") { print "n/a"; exit }
  ok = (op == "<=") ? (v + 0 <= t + 0) : (v + 0 < t + 0); print ok ? "met" : "MISSED" }'; }
DR=$(ratio "$A_DRAIN" "$F_DRAIN"); WR=$(ratio "${A_WS:-0}" "${F_WS:-0}"); WRH=$(ratio "$A_WSH" "$F_WSH")
echo
echo "                        fixed ($MAX)   autoscaled (0..$MAX)"
printf "first invocation (s)   %10s   %10s\n" "$F_FIRST" "$A_FIRST"
printf "drain (s)              %10s   %10s   ratio %s (target <= 1.2: %s)\n" "$F_DRAIN" "$A_DRAIN" "$DR" "$(verdict "$DR" "<=" 1.2)"
printf "worker-s to drain      %10s   %10s   ratio %s (target < 1: %s)\n" "$F_WS" "$A_WS" "$WR" "$(verdict "$WR" "<" 1)"
printf "worker-s in %3ss       %10s   %10s   ratio %s (target < 1: %s)\n" "$HORIZON" "$F_WSH" "$A_WSH" "$WRH" "$(verdict "$WRH" "<" 1)"
printf "react from zero (s)                 %10s   max %s (target <= 2: %s)\n" "$REACT_MED" "$REACT_MAX" "$(verdict "$REACT_MAX" "<=" 2)"
printf "noise: most direction changes in any %ss window: %s (target <= 1: %s); %s per window\n" "$WINDOW" "$N_MWD" "$(verdict "$N_MWD" "<=" 1)" "$PER_WIN"
echo "RESULT engine_scaling drain_ratio=$DR ws_drain_ratio=$WR ws_horizon_ratio=$WRH react_max_s=$REACT_MAX react_median_s=$REACT_MED noise_max_changes_per_window=$N_MWD noise_changes_per_window=$PER_WIN check=$([[ $FAIL == 0 ]] && echo ok || echo failed)"
exit $FAIL
