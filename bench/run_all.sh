#!/usr/bin/env bash
# Builds what the benchmarks need and runs the three of them, then prints one
# summary table. Each benchmark runs its raw baseline beside sluice in the same run.
# The environment variables of each script pass through (ROUNDS, DURATION, COUNT, ...).
# Full output is kept in $LOG_DIR (default: a fresh /tmp/sluice-bench-results.*).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

LOG_DIR=${LOG_DIR:-$(mktemp -d /tmp/sluice-bench-results.XXXXXX)}
mkdir -p "$LOG_DIR"

echo "== build (-j1)"
cmake --build "$BUILD" --target sluice bench_spawn_baseline bench_exec bench_nats bench_runtimes bench_kafka bench_noop -j1 || die "build failed"

echo "== machine"
machine_note | tee "$LOG_DIR/machine.txt"

status=0
for b in http_ingress exec_runtime backlog_memory nats/nats_bench runtimes kafka/kafka_consume; do
  echo "== $b  ($(date -u +%FT%TZ))"
  bash "$BENCH_DIR/$b.sh" 2>&1 | tee "$LOG_DIR/${b##*/}.txt"
  rc=${PIPESTATUS[0]}
  ((rc == 0)) || { echo "!! $b exited with status $rc"; status=1; }
done

get() { grep -h "^RESULT $1 " "$LOG_DIR/$1.txt" 2>/dev/null | tail -1 | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
mb() { awk -v k="$1" 'BEGIN { if (k == "") print "-"; else printf "%.1f MB", k / 1024 }'; }
met() { awk -v r="$1" -v t="$2" -v dir="$3" 'BEGIN { if (r == "") print "-";
  else if ((dir == "ge" && r >= t) || (dir == "le" && r <= t)) print "yes"; else print "NO" }'; }

echo
echo "== summary (logs in $LOG_DIR)"
fmt="%-40s %12s %21s %6s %9s %4s\n"
printf "$fmt" figure baseline sluice ratio target met
printf "$fmt" "HTTP ingress req/s (wrk, 64 conns)" "$(get http_ingress baseline)" "$(get http_ingress sluice)" \
  "$(get http_ingress ratio)" ">=1.0x" "$(met "$(get http_ingress ratio)" 1.0 ge)"
printf "$fmt" "  sluice latency p50 / p99 (ms)" - "$(get http_ingress p50_ms) / $(get http_ingress p99_ms)" - - -
printf "$fmt" "  202s / events stored" - "$(get http_ingress acked) / $(get http_ingress stored)" - - "$(get http_ingress check)"
printf "$fmt" "exec runtime inv/s (cat, ExecRuntime)" "$(get exec_runtime baseline)" "$(get exec_runtime runtime)" \
  "$(get exec_runtime ratio_runtime)" ">=0.9x" "$(met "$(get exec_runtime ratio_runtime)" 0.9 ge)"
printf "$fmt" "exec end to end inv/s (sluice run)" "$(get exec_runtime baseline)" "$(get exec_runtime engine)" \
  "$(get exec_runtime ratio_engine)" "(info)" -
# Bounded: the growth over idle stays within the default byte budget of one function
# (max_inflight_bytes, 64 MiB), far below the backlog's size on disk.
bounded=$(awk -v i="$(get backlog_memory idle_max_kb)" -v r="$(get backlog_memory run_max_kb)" \
  'BEGIN { if (i == "" || r == "") print "-"; else if (r - i <= 65536) print "yes"; else print "NO" }')
printf "$fmt" "RSS, 1M backlog vs idle (max)" "$(mb "$(get backlog_memory idle_max_kb)")" "$(mb "$(get backlog_memory run_max_kb)")" \
  "$(get backlog_memory ratio)" "<=+64MiB" "$bounded"
printf "$fmt" "  backlog on disk" - "$(get backlog_memory db_mb) MB" - - -
printf "$fmt" "  backlog run RSS min / last" - "$(mb "$(get backlog_memory run_min_kb)") / $(mb "$(get backlog_memory run_last_kb)")" - - -
printf "$fmt" "NATS JetStream drain events/s (1M x 100B)" "$(get nats_bench baseline)" "$(get nats_bench sluice)" \
  "$(get nats_bench ratio)" ">=0.8x" "$(met "$(get nats_bench ratio)" 0.8 ge)"
printf "$fmt" "  sluice RSS during drain min / max" - "$(mb "$(get nats_bench rss_min_kb)") / $(mb "$(get nats_bench rss_max_kb)")" - - -
# bench/runtimes: one call at a time (c1) and four in flight (c4); targets of issue 6.
getr() { grep -h "^RESULT runtimes_$1 " "$LOG_DIR/runtimes.txt" 2>/dev/null | tail -1 | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
for rt in exec:0.9 stdio:0.7 http:0.4 inproc:-; do
  for c in c1 c4; do
    n=${rt%%:*} t=${rt##*:} k=${rt%%:*}_$c
    if [[ $t == - ]]; then target="+<2us" verdict="+$(getr "$k" added_us)us"
    else target=">=${t}x" verdict=$(met "$(getr "$k" ratio)" "$t" ge); fi
    printf "$fmt" "runtime $n $c inv/s (p50 $(getr "$k" p50_us) us)" "$(getr "$k" base_inv_s)" \
      "$(getr "$k" sluice_inv_s)" "$(getr "$k" ratio)" "$target" "$verdict"
  done
done
printf "$fmt" "Kafka drain events/s (1M x 100B, inproc)" "$(get kafka_consume baseline)" "$(get kafka_consume sluice)" \
  "$(get kafka_consume ratio)" ">=0.8x" "$(met "$(get kafka_consume ratio)" 0.8 ge)"
printf "$fmt" "  sluice RSS (kB) at 25/50/75/100 % drained" - "$(get kafka_consume rss_quarters_kb)" - - -
exit $status
