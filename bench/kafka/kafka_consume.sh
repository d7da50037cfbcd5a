#!/usr/bin/env bash
# Kafka drain, side by side in one run: one topic of 6 partitions pre-filled with
# COUNT (1,000,000) records of SIZE (100) bytes over KEYS (1000) keys, then
#   1. the baseline: a plain librdkafka consumer (bench_kafka consume: poll, store
#      each offset, auto-commit every 100 ms — sluice's consumer settings) in its own
#      group, until it has seen all COUNT;
#   2. sluice: `sluice run` with one no-op function in another group, in the fastest
#      runtime: `inproc` with bench/noop_function.c (RUNTIME=exec COMMAND=[cat]
#      runs one process per event instead), until all COUNT are committed or
#      DRAIN_SECONDS passed — a partial drain is reported as such.
# Both are timed alike from outside (bench_kafka watch: the group's committed offsets
# every 100 ms, from the first progress to the last), and the RSS of each process is
# sampled while it drains.
#
# The broker: KAFKA_BOOTSTRAP (host:port of a running broker), or a fresh single-node
# Kafka 3.9 started here by tests/kafka/kafka.sh (and stopped at the end).
#
# Environment: COUNT, SIZE, KEYS, DRAIN_SECONDS (120), CONCURRENCY (16), RUNTIME (inproc), INLINE (true),
# COMMAND ([<build>/bench/libbench_noop.so]), ORDERING (none),
# BASE_OPTIONS (librdkafka settings for the baseline, "key=value ..."; default none: e.g.
# "queued.min.messages=1000000 queued.max.messages.kbytes=16384", sluice's own queue),
# KAFKA_BOOTSTRAP, WAIT_QUIET (lib.sh).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

COUNT=${COUNT:-1000000}
SIZE=${SIZE:-100}
KEYS=${KEYS:-1000}
DRAIN_SECONDS=${DRAIN_SECONDS:-120}
CONCURRENCY=${CONCURRENCY:-16}
RUNTIME=${RUNTIME:-inproc}
NOOP_LIB=${NOOP_LIB:-$BUILD/bench/libbench_noop.so}
COMMAND=${COMMAND:-"[\"$NOOP_LIB\"]"}
ORDERING=${ORDERING:-none}
# inproc only: call the function on the dispatcher thread (`inline: true`, the
# fastest path) or on a pool of CONCURRENCY threads (INLINE=false).
INLINE=${INLINE:-true}
[[ "$RUNTIME" == inproc ]] || INLINE=false
BENCH_KAFKA=${BENCH_KAFKA:-$BUILD/bench/kafka/bench_kafka}

need curl
[[ -x "$SLUICE" ]] || die "$SLUICE not built (cmake --build build --target sluice)"
[[ -x "$BENCH_KAFKA" ]] || die "$BENCH_KAFKA not built (cmake --build build --target bench_kafka)"
[[ "$RUNTIME" != inproc || -f "$NOOP_LIB" ]] || die "$NOOP_LIB not built (cmake --build build --target bench_noop)"
bench_init kafka
trap kafka_cleanup EXIT

BASE_OPTIONS=${BASE_OPTIONS:-}
base_sets
echo "# kafka: $COUNT x $SIZE B over $KEYS keys in one topic of 6 partitions; plain librdkafka consumer vs sluice ($RUNTIME $COMMAND x $CONCURRENCY, inline $INLINE, ordering $ORDERING)"
kafka_up
TOPIC="bench-$$-$RANDOM"

"$BENCH_KAFKA" fill --bootstrap "$KAFKA_BOOTSTRAP" --topic "$TOPIC" --count "$COUNT" --size "$SIZE" \
  --keys "$KEYS" | tee "$BENCH_TMP/fill.txt"
[[ -n "${KAFKA_DIR:-}" ]] && du -sh "$KAFKA_DIR/logs" | awk '{print "# log on disk: " $1}'

# watch GROUP PID LIMIT: RESULT line of bench_kafka watch into $BENCH_TMP/watch-GROUP.txt
watch_group() {
  "$BENCH_KAFKA" watch --bootstrap "$KAFKA_BOOTSTRAP" --topic "$TOPIC" --group "$1" \
    --count "$COUNT" --pid "$2" --max-seconds "$3" | tee "$BENCH_TMP/watch-$1.txt"
}
field() { sed -n "s/^RESULT .* $2=\([^ ]*\).*/\1/p" "$1" | tail -1; }

wait_quiet
echo "# baseline: $(load_note)"
"$BENCH_KAFKA" consume --bootstrap "$KAFKA_BOOTSTRAP" --topic "$TOPIC" --group "base-$TOPIC" \
  --count "$COUNT" --max-seconds 600 "${BASE_SETS[@]}" >"$BENCH_TMP/baseline.txt" &
BASE_PID=$!; track $BASE_PID
watch_group "base-$TOPIC" "$BASE_PID" 600 || true
wait "$BASE_PID" || die "the baseline consumer failed"
cat "$BENCH_TMP/baseline.txt"
BASE=$(field "$BENCH_TMP/watch-base-$TOPIC.txt" events_per_s)

MPORT=$(free_port)
mkdir -p "$BENCH_TMP/sluice"
cat >"$BENCH_TMP/sluice/sluice.yaml" <<YAML
brokers:
  kafka: { kind: kafka, bootstrap: "$KAFKA_BOOTSTRAP", group: "sluice-$TOPIC" }
metrics: { listen: 127.0.0.1:$MPORT }
engine: { drain_timeout: 2s }
functions:
  - name: noop
    runtime: $RUNTIME
    command: $COMMAND
    concurrency: $CONCURRENCY
    inline: $INLINE
    subscribe: [{ broker: kafka, topic: "$TOPIC", ordering: $ORDERING }]
YAML
wait_quiet
echo "# sluice: $(load_note)"
"$SLUICE" run -c "$BENCH_TMP/sluice/sluice.yaml" >"$BENCH_TMP/sluice/sluice.log" 2>&1 &
SLUICE_PID=$!; track $SLUICE_PID
watch_group "sluice-$TOPIC" "$SLUICE_PID" "$DRAIN_SECONDS" ||
  die "sluice failed: $(tail -5 "$BENCH_TMP/sluice/sluice.log")"
stop_pid "$SLUICE_PID" || echo "sluice exited with status $?"
W="$BENCH_TMP/watch-sluice-$TOPIC.txt"
SL=$(field "$W" events_per_s)
echo "# after: $(load_note)"
echo "baseline (librdkafka poll + offsets_store + auto-commit): $BASE events/s; RSS max $(field "$BENCH_TMP/baseline.txt" rss_max_kb) kB"
echo "sluice ($RUNTIME $COMMAND x $CONCURRENCY): $SL events/s over $(field "$W" count) events (drained all: $(field "$W" drained)); RSS min/max/last $(field "$W" rss_min_kb)/$(field "$W" rss_max_kb)/$(field "$W" rss_last_kb) kB; at 25/50/75/100 % committed $(field "$W" rss_quarters_kb) kB"
echo "RESULT kafka_consume baseline=$BASE sluice=$SL ratio=$(ratio "$SL" "$BASE") sluice_count=$(field "$W" count) drained=$(field "$W" drained) base_rss_max_kb=$(field "$BENCH_TMP/baseline.txt" rss_max_kb) rss_min_kb=$(field "$W" rss_min_kb) rss_max_kb=$(field "$W" rss_max_kb) rss_last_kb=$(field "$W" rss_last_kb) rss_quarters_kb=$(field "$W" rss_quarters_kb)"
