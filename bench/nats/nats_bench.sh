#!/usr/bin/env bash
# NATS JetStream drain, side by side in one run: one stream pre-filled with COUNT
# (1,000,000) messages of SIZE (100) bytes on a fresh `nats-server -js` (file
# storage), then
#   1. the baseline: a plain nats.c durable pull consumer with explicit acks
#      (bench_nats baseline: fetch up to 256, ack each), until all COUNT are acked;
#   2. sluice: `sluice run` with one no-op function on its own durable over the same
#      stream (RUNTIME, COMMAND: by default the fastest runtime, `inproc` with the
#      no-op library bench_noop; RUNTIME=exec COMMAND=[cat] measures one process
#      per event), watched from outside (bench_nats watch: the
#      durable's ack floor every 100 ms, and sluice's RSS) until all COUNT are
#      acked or DRAIN_SECONDS passed — a partial drain is reported as such.
# Prints events/s of both, the ratio, and sluice's RSS (min / max / last) during
# the drain.
#
# Environment: COUNT, SIZE, DRAIN_SECONDS (120), CONCURRENCY (16), RUNTIME (inproc), INLINE (true), COMMAND,
# MAX_ACK_PENDING (1000, both consumers), BATCH (256, both), WAIT_QUIET (lib.sh).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

COUNT=${COUNT:-1000000}
SIZE=${SIZE:-100}
SECONDS_LIMIT=${SECONDS_LIMIT:-${DRAIN_SECONDS:-120}}
CONCURRENCY=${CONCURRENCY:-16}
RUNTIME=${RUNTIME:-inproc}
NOOP_LIB=${NOOP_LIB:-$BUILD/bench/libbench_noop.so}
if [[ "$RUNTIME" == inproc ]]; then COMMAND=${COMMAND:-"[\"$NOOP_LIB\"]"}; else COMMAND=${COMMAND:-'[cat]'}; fi
MAX_ACK_PENDING=${MAX_ACK_PENDING:-1000}
# inproc only: call the function on the dispatcher thread (`inline: true`, the
# fastest path) or on a pool of CONCURRENCY threads (INLINE=false).
INLINE=${INLINE:-true}
[[ "$RUNTIME" == inproc ]] || INLINE=false
BATCH=${BATCH:-256}
BENCH_NATS=${BENCH_NATS:-$BUILD/bench/nats/bench_nats}

need nats-server; need curl; need python3
[[ -x "$SLUICE" ]] || die "$SLUICE not built (cmake --build build --target sluice)"
[[ -x "$BENCH_NATS" ]] || die "$BENCH_NATS not built (cmake --build build --target bench_nats)"
bench_init nats

echo "# nats: $COUNT x $SIZE B in one JetStream stream (file storage); plain nats.c pull consumer vs sluice ($RUNTIME $COMMAND x $CONCURRENCY); window $MAX_ACK_PENDING, batch $BATCH"
wait_quiet
echo "# before: $(load_note)"

NPORT=$(free_port)
URL="nats://127.0.0.1:$NPORT"
nats-server -js -sd "$BENCH_TMP/store" -a 127.0.0.1 -p "$NPORT" -l "$BENCH_TMP/nats-server.log" &
NATS_PID=$!; track $NATS_PID
for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$NPORT") 2>/dev/null && break; sleep 0.1; done

SUBJECT=bench.data
"$BENCH_NATS" prefill "$URL" BENCH "$SUBJECT" "$COUNT" "$SIZE" | tee "$BENCH_TMP/prefill.txt"
du -sh "$BENCH_TMP/store" | awk '{print "# store on disk: " $1}'

echo "# baseline: $(load_note)"
"$BENCH_NATS" baseline "$URL" BENCH "$SUBJECT" plain "$COUNT" "$BATCH" "$MAX_ACK_PENDING" | tee "$BENCH_TMP/baseline.txt"
BASE=$(sed -n 's/^RESULT baseline .* rate=\([0-9]*\).*/\1/p' "$BENCH_TMP/baseline.txt")

MPORT=$(free_port)
mkdir -p "$BENCH_TMP/sluice"
cat >"$BENCH_TMP/sluice/sluice.yaml" <<YAML
brokers:
  nats: { kind: nats, url: "$URL", jetstream: { stream: BENCH, subjects: ["$SUBJECT", "$SUBJECT.dlq"] },
          options: { max_ack_pending: "$MAX_ACK_PENDING", fetch_batch: "$BATCH" } }
metrics: { listen: 127.0.0.1:$MPORT }
engine: { drain_timeout: 2s }
functions:
  - name: noop
    runtime: $RUNTIME
    command: $COMMAND
    concurrency: $CONCURRENCY
    inline: $INLINE
    subscribe: [{ broker: nats, topic: "$SUBJECT", ordering: none }]
    dead_letter: { broker: nats, topic: "$SUBJECT.dlq" }
YAML
echo "# sluice: $(load_note)"
"$SLUICE" run -c "$BENCH_TMP/sluice/sluice.yaml" >"$BENCH_TMP/sluice/sluice.log" 2>&1 &
SLUICE_PID=$!; track $SLUICE_PID
"$BENCH_NATS" watch "$URL" BENCH sluice_noop "$COUNT" "$SLUICE_PID" "$SECONDS_LIMIT" | tee "$BENCH_TMP/sluice.txt" ||
  die "sluice failed: $(tail -5 "$BENCH_TMP/sluice/sluice.log")"
stop_pid "$SLUICE_PID" || echo "sluice exited with status $?"
get() { grep "^RESULT sluice " "$BENCH_TMP/sluice.txt" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
SL=$(get rate)
echo "# after: $(load_note)"
echo "baseline (nats.c pull + ack): $BASE events/s"
echo "sluice ($RUNTIME $COMMAND x $CONCURRENCY): $SL events/s over $(get count) events (drained all: $(get drained)); RSS min/max/last $(get rss_min_kb)/$(get rss_max_kb)/$(get rss_last_kb) kB"
echo "RESULT nats_bench baseline=$BASE sluice=$SL ratio=$(ratio "$SL" "$BASE") sluice_count=$(get count) drained=$(get drained) rss_min_kb=$(get rss_min_kb) rss_max_kb=$(get rss_max_kb) rss_last_kb=$(get rss_last_kb)"
