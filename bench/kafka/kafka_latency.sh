#!/usr/bin/env bash
# Kafka publish-to-function latency at a fixed rate, side by side in one run:
#   1. the baseline: a plain librdkafka consumer (bench_kafka consume --latency 1) on
#      topic A while `bench_kafka paced` produces RATE records/s to it;
#   2. sluice: `sluice run` with the latency function (latency_function.c, runtime
#      `inproc`, inline) subscribed to topic B while the same paced producer runs.
# Each side gets WARMUP seconds of untimed records first (the consumer joins its group
# meanwhile), then TIMED_SECONDS of timed ones: each value starts with the time it was
# produced (CLOCK_REALTIME, µs). The consumer measures now - that time; percentiles
# are of the timed records only. RATE defaults to half of MAX_RATE (sluice's drain
# rate measured by kafka_consume.sh; pass it, or RATE directly).
#
# Environment: RATE, MAX_RATE (700000), TIMED_SECONDS (10), WARMUP (8), SIZE (100), KEYS (1000),
# CONCURRENCY (16), INLINE (true), ORDERING (none), KAFKA_BOOTSTRAP, WAIT_QUIET (lib.sh),
# SIDE (both; `sluice` or `baseline` runs one side only), ORDER (baseline-first or
# sluice-first), SLUICE_OPTIONS
# (extra librdkafka options for sluice's broker, as a YAML map body: 'a.b: "1"'),
# BASE_OPTIONS (librdkafka settings for the baseline consumer, "key=value ...", as in
# kafka_consume.sh; e.g. sluice's queue settings "queued.min.messages=1000000
# queued.max.messages.kbytes=16384", which spare it librdkafka 2.0's fetch stall).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

MAX_RATE=${MAX_RATE:-700000}
RATE=${RATE:-$((MAX_RATE / 2))}
SECONDS_TIMED=${TIMED_SECONDS:-10}
WARMUP=${WARMUP:-8}
SIZE=${SIZE:-100}
KEYS=${KEYS:-1000}
CONCURRENCY=${CONCURRENCY:-16}
INLINE=${INLINE:-true}
ORDERING=${ORDERING:-none}
LAT_LIB=${LAT_LIB:-$BUILD/bench/kafka/libbench_kafka_latency.so}
BENCH_KAFKA=${BENCH_KAFKA:-$BUILD/bench/kafka/bench_kafka}
base_sets

need curl
[[ -x "$SLUICE" ]] || die "$SLUICE not built (cmake --build build --target sluice)"
[[ -x "$BENCH_KAFKA" ]] || die "$BENCH_KAFKA not built (cmake --build build --target bench_kafka)"
[[ -f "$LAT_LIB" ]] || die "$LAT_LIB not built (cmake --build build --target bench_kafka_latency)"
bench_init kafka-latency
trap kafka_cleanup EXIT

TOTAL=$(( RATE / 1000 * 1000 * (WARMUP + SECONDS_TIMED) ))
echo "# kafka latency: $RATE records/s of $SIZE B for ${WARMUP}s warm-up + ${SECONDS_TIMED}s timed ($TOTAL records per side); plain librdkafka consumer vs sluice (inproc latency function, inline $INLINE, x $CONCURRENCY, ordering $ORDERING)"
kafka_up
A="lat-base-$$-$RANDOM" B="lat-sluice-$$-$RANDOM"
field() { sed -n "s/^RESULT name=$2 \(.* \)\{0,1\}$3=\([^ ]*\).*/\2/p" "$1" | tail -1; }
paced() { "$BENCH_KAFKA" paced --bootstrap "$KAFKA_BOOTSTRAP" --topic "$1" --rate "$RATE" \
  --seconds "$SECONDS_TIMED" --warmup "$WARMUP" --size "$SIZE" --keys "$KEYS"; }

run_baseline() {
  wait_quiet
  echo "# baseline: $(load_note)"
  "$BENCH_KAFKA" consume --bootstrap "$KAFKA_BOOTSTRAP" --topic "$A" --group "g-$A" --count "$TOTAL" \
    --latency 1 "${BASE_SETS[@]}" --max-seconds $((WARMUP + SECONDS_TIMED + 120)) >"$BENCH_TMP/baseline.txt" &
  BASE_PID=$!; track $BASE_PID
  paced "$A" | tee "$BENCH_TMP/paced-base.txt"
  wait "$BASE_PID" || die "the baseline consumer failed"
  cat "$BENCH_TMP/baseline.txt"
}

run_sluice() {
  MPORT=$(free_port)
  mkdir -p "$BENCH_TMP/sluice"
  cat >"$BENCH_TMP/sluice/sluice.yaml" <<YAML
brokers:
  kafka: { kind: kafka, bootstrap: "$KAFKA_BOOTSTRAP", group: "g-$B", options: { ${SLUICE_OPTIONS:-} } }
metrics: { listen: 127.0.0.1:$MPORT }
engine: { drain_timeout: 5s }
functions:
  - name: latency
    runtime: inproc
    command: ["$LAT_LIB"]
    concurrency: $CONCURRENCY
    inline: $INLINE
    subscribe: [{ broker: kafka, topic: "$B", ordering: $ORDERING }]
YAML
  wait_quiet
  echo "# sluice: $(load_note)"
  SLUICE_BENCH_LATENCY_OUT="$BENCH_TMP/sluice/latency.txt" \
    "$SLUICE" run -c "$BENCH_TMP/sluice/sluice.yaml" >"$BENCH_TMP/sluice/sluice.log" 2>&1 &
  SLUICE_PID=$!; track $SLUICE_PID
  paced "$B" | tee "$BENCH_TMP/paced-sluice.txt"
  "$BENCH_KAFKA" watch --bootstrap "$KAFKA_BOOTSTRAP" --topic "$B" --group "g-$B" --count "$TOTAL" \
    --pid "$SLUICE_PID" --max-seconds 120 >"$BENCH_TMP/watch.txt" || true
  stop_pid "$SLUICE_PID" || echo "sluice exited with status $?"
  [[ -s "$BENCH_TMP/sluice/latency.txt" ]] || die "sluice wrote no latency figures: $(tail -5 "$BENCH_TMP/sluice/sluice.log")"
  echo "RESULT name=sluice_latency $(cat "$BENCH_TMP/sluice/latency.txt")"
}

# The side that runs second meets a broker that has just taken the first side's
# records (and its garbage collector's aftermath): ORDER=sluice-first swaps them.
: >"$BENCH_TMP/baseline.txt"; : >"$BENCH_TMP/paced-base.txt"
mkdir -p "$BENCH_TMP/sluice"; : >"$BENCH_TMP/sluice/latency.txt"; : >"$BENCH_TMP/paced-sluice.txt"
case "${SIDE:-both}/${ORDER:-baseline-first}" in
  sluice/*) run_sluice ;;
  baseline/*) run_baseline ;;
  both/sluice-first) run_sluice; run_baseline ;;
  both/baseline-first) run_baseline; run_sluice ;;
  *) die "SIDE must be both, sluice or baseline and ORDER baseline-first or sluice-first (got SIDE=${SIDE:-} ORDER=${ORDER:-})" ;;
esac
L="$BENCH_TMP/sluice/latency.txt"
sl() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" "$L"; }
echo "# after: $(load_note)"
echo "producer: baseline side $(field "$BENCH_TMP/paced-base.txt" paced events_per_s)/s (late 1-ms slots: $(field "$BENCH_TMP/paced-base.txt" paced late_ms)), sluice side $(field "$BENCH_TMP/paced-sluice.txt" paced events_per_s)/s (late: $(field "$BENCH_TMP/paced-sluice.txt" paced late_ms))"
echo "baseline p50/p99/p99.9: $(field "$BENCH_TMP/baseline.txt" latency p50_us) / $(field "$BENCH_TMP/baseline.txt" latency p99_us) / $(field "$BENCH_TMP/baseline.txt" latency p999_us) us over $(field "$BENCH_TMP/baseline.txt" latency count) records"
echo "sluice   p50/p99/p99.9: $(sl p50_us) / $(sl p99_us) / $(sl p999_us) us over $(sl count) records"
echo "RESULT kafka_latency rate=$RATE base_p50_us=$(field "$BENCH_TMP/baseline.txt" latency p50_us) base_p99_us=$(field "$BENCH_TMP/baseline.txt" latency p99_us) sluice_p50_us=$(sl p50_us) sluice_p99_us=$(sl p99_us) sluice_p999_us=$(sl p999_us) sluice_count=$(sl count)"
