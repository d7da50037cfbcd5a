#!/usr/bin/env bash
# Kafka drain with a subscription filter that passes half the records, against the same
# drain with no filter, side by side in one run (issue 20: filtered events must be
# cheaper than invoked ones). Per row, one topic of 6 partitions is filled with COUNT
# binary-mode CloudEvents of SIZE bytes whose type alternates bench.keep / bench.skip
# (bench_kafka fill --types), then drained twice by `sluice run`, each in its own group:
#   1. the baseline: the function subscribed with no filter (every record invoked);
#   2. sluice with `filter: { sql: "type = 'bench.keep'" }` (half invoked, half
#      committed without an invocation).
# Both are timed alike from outside (bench_kafka watch: the group's committed offsets,
# from the first progress until all COUNT are committed).
#
# Rows (ROWS, default "exec inproc"):
#   exec    `runtime: exec`, command [true]: one process per invocation (COUNT_EXEC, 20000)
#   inproc  `runtime: inproc`, inline, bench/noop_function.c: an invocation costs next to
#           nothing, so this row shows what evaluating the filter costs (COUNT_INPROC, 500000)
# Environment: ROWS, COUNT_EXEC, COUNT_INPROC, SIZE (100), KEYS (1000), CONCURRENCY (16),
# DRAIN_SECONDS (300), KAFKA_BOOTSTRAP, WAIT_QUIET (lib.sh).
# Prints `RESULT kafka_filter_<row> nofilter=<ev/s> filter=<ev/s> ratio=<filter/nofilter> filtered=<n>`.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

ROWS=${ROWS:-"exec inproc"}
COUNT_EXEC=${COUNT_EXEC:-20000}
COUNT_INPROC=${COUNT_INPROC:-500000}
SIZE=${SIZE:-100}
KEYS=${KEYS:-1000}
CONCURRENCY=${CONCURRENCY:-16}
DRAIN_SECONDS=${DRAIN_SECONDS:-300}
NOOP_LIB=${NOOP_LIB:-$BUILD/bench/libbench_noop.so}
BENCH_KAFKA=${BENCH_KAFKA:-$BUILD/bench/kafka/bench_kafka}

need curl
[[ -x "$SLUICE" ]] || die "$SLUICE not built (cmake --build build --target sluice)"
[[ -x "$BENCH_KAFKA" ]] || die "$BENCH_KAFKA not built (cmake --build build --target bench_kafka)"
bench_init kafka_filter
trap kafka_cleanup EXIT
kafka_up

field() { sed -n "s/^RESULT .* $2=\([^ ]*\).*/\1/p" "$1" | tail -1; }

# drain ROW TOPIC COUNT NAME FILTER_YAML: one sluice run in group NAME-TOPIC; sets R_EPS
# (events/s), R_FILTERED and R_INVOKED.
drain() {
  local row=$1 topic=$2 count=$3 name=$4 filter=$5 runtime command inline
  case "$row" in
    exec) runtime=exec; command='[true]'; inline=false ;;
    inproc) runtime=inproc; command="[\"$NOOP_LIB\"]"; inline=true ;;
    *) die "unknown row $row (exec, inproc)" ;;
  esac
  local dir="$BENCH_TMP/$row-$name" mport
  mport=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/sluice.yaml" <<YAML
brokers:
  kafka: { kind: kafka, bootstrap: "$KAFKA_BOOTSTRAP", group: "$name-$topic" }
metrics: { listen: 127.0.0.1:$mport }
engine: { drain_timeout: 2s }
functions:
  - name: fn
    runtime: $runtime
    command: $command
    concurrency: $CONCURRENCY
    inline: $inline
    subscribe:
      - broker: kafka
        topic: "$topic"
        ordering: none
$filter
YAML
  wait_quiet
  echo "# $row $name: $(load_note)"
  "$SLUICE" run -c "$dir/sluice.yaml" >"$dir/sluice.log" 2>&1 &
  local pid=$!
  track $pid
  "$BENCH_KAFKA" watch --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --group "$name-$topic" \
    --count "$count" --pid "$pid" --max-seconds "$DRAIN_SECONDS" >"$dir/watch.txt" ||
    die "sluice ($row $name) failed: $(tail -5 "$dir/sluice.log")"
  cat "$dir/watch.txt"
  local filtered
  filtered=$(curl -s "http://127.0.0.1:$mport/metrics" |
    sed -n 's/^sluice_events_filtered_total{function="fn"} \(.*\)/\1/p')
  local invoked
  invoked=$(curl -s "http://127.0.0.1:$mport/metrics" |
    sed -n 's/^sluice_invocations_total{function="fn",outcome="success"} \(.*\)/\1/p')
  stop_pid "$pid" || true
  [[ "$(field "$dir/watch.txt" drained)" == 1 || "$(field "$dir/watch.txt" count)" == "$count" ]] ||
    echo "# $row $name: partial drain"
  R_EPS=$(field "$dir/watch.txt" events_per_s)
  R_FILTERED=${filtered:-0}
  R_INVOKED=${invoked:-0}
}

for row in $ROWS; do
  count=$COUNT_EXEC
  [[ "$row" == inproc ]] && count=$COUNT_INPROC
  topic="bench-filter-$row-$$-$RANDOM"
  echo "# $row: $count x $SIZE B CloudEvents, types bench.keep / bench.skip in turn, 6 partitions; concurrency $CONCURRENCY"
  "$BENCH_KAFKA" fill --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --count "$count" \
    --size "$SIZE" --keys "$KEYS" --types bench.keep,bench.skip
  drain "$row" "$topic" "$count" nofilter ""
  base=$R_EPS base_filtered=$R_FILTERED base_invoked=$R_INVOKED
  drain "$row" "$topic" "$count" filter "        filter: { sql: \"type = 'bench.keep'\" }"
  sl=$R_EPS filtered=$R_FILTERED invoked=$R_INVOKED
  echo "$row no filter: $base events/s ($base_invoked invoked, $base_filtered filtered)"
  echo "$row filter passing 50 %: $sl events/s ($invoked invoked, $filtered filtered)"
  echo "RESULT kafka_filter_$row nofilter=$base filter=$sl ratio=$(ratio "$sl" "$base") filtered=$filtered invoked=$invoked count=$count"
done
