#!/usr/bin/env bash
# The whole engine, end to end, for every source x runtime pair users combine:
#   sources   local (the SQLite queue), kafka (Kafka 3.9, one topic of 6 partitions),
#             nats (NATS JetStream, file storage)
#   runtimes  inproc (inline: true, bench/noop_function.c), python, node, go
#             (the SDK workers' no-op examples, sdk/<lang>/examples/noop, runtime stdio),
#             exec (`true`)
# For each pair: COUNT events of 100 bytes are pre-published, then `sluice run` drains
# them into the no-op function (CONCURRENCY, ordering: none); bench/e2e/watch.py times
# the drain from the first invocation to the COUNT-th (start-up and group join not
# counted) and reads, over the same span, the CPU (utime + stime) per event of the
# engine, of its worker processes and of the broker's process, and the machine's idle
# share: on 2 vCPUs the three share the machine, so a row that cannot go faster shows
# idle near 0 and where the CPU went.
# Baseline of the kafka x python row: bench/e2e/kafka_loop.py, the plain confluent-kafka
# Python consumer loop calling the same no-op handler (confluent-kafka and protobuf
# are installed from PyPI into $VENV once). Every row also gets its ratio to the local
# row of the same runtime.
#
# Environment: COUNT (20000), CONCURRENCY (16), ROUNDS (1), SOURCES ("local kafka nats"),
# RUNTIMES ("inproc python node go exec"), ORDERING (none), KAFKA_BOOTSTRAP or
# SLUICE_TEST_KAFKA_BOOTSTRAP (a running broker; otherwise tests/kafka/kafka.sh starts
# one here), NATS_OPTIONS (extra `options:` of the nats broker, e.g.
# 'max_ack_pending: "20000"'), KAFKA_OPTIONS (same for the kafka broker), VENV
# (<repo>/.cache/bench-e2e-venv), MAX_SECONDS per pair (300), WAIT_QUIET/QUIET_BUSY/
# QUIET_TIMEOUT (lib.sh). A longer run: COUNT=200000 ROUNDS=3.
# Rows whose toolchain is missing are skipped with a `# skipped` line.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COUNT=${COUNT:-20000}
CONCURRENCY=${CONCURRENCY:-16}
ROUNDS=${ROUNDS:-1}
SOURCES=${SOURCES:-local kafka nats}
RUNTIMES=${RUNTIMES:-inproc python node go exec}
ORDERING=${ORDERING:-none}
MAX_SECONDS=${MAX_SECONDS:-300}
VENV=${VENV:-$REPO/.cache/bench-e2e-venv}
KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP:-${SLUICE_TEST_KAFKA_BOOTSTRAP:-}}
NOOP_LIB=${NOOP_LIB:-$BUILD/bench/libbench_noop.so}
BENCH_KAFKA=${BENCH_KAFKA:-$BUILD/bench/kafka/bench_kafka}
BENCH_NATS=${BENCH_NATS:-$BUILD/bench/nats/bench_nats}
E2E="$BENCH_DIR/e2e"

need curl; need python3
# The interpreter itself (a pyenv shim adds a start-up delay the watcher must not have).
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
[[ -x "$SLUICE" ]] || die "$SLUICE not built (cmake --build build --target sluice)"
has() { [[ " $1 " == *" $2 "* ]]; }
if has "$SOURCES" kafka; then
  [[ -x "$BENCH_KAFKA" ]] || die "$BENCH_KAFKA not built (cmake --build build --target bench_kafka)"
fi
if has "$SOURCES" nats; then
  need nats-server
  [[ -x "$BENCH_NATS" ]] || die "$BENCH_NATS not built (cmake --build build --target bench_nats)"
fi
if has "$RUNTIMES" inproc; then
  [[ -f "$NOOP_LIB" ]] || die "$NOOP_LIB not built (cmake --build build --target bench_noop)"
fi
bench_init e2e
trap kafka_cleanup EXIT
cd "$BENCH_TMP"

# --- toolchains ------------------------------------------------------------------
if has "$RUNTIMES" python || has "$SOURCES" kafka; then
  if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import google.protobuf, confluent_kafka' 2>/dev/null; then
    echo "# installing protobuf + confluent-kafka from PyPI into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check protobuf confluent-kafka ||
      die "pip could not install protobuf confluent-kafka into $VENV"
  fi
  PY="$VENV/bin/python"
fi
SKIP_node=""; SKIP_go=""
if has "$RUNTIMES" node; then
  if ! command -v node >/dev/null; then SKIP_node="node is not installed"
  elif [[ ! -d "$REPO/sdk/node/node_modules/protobufjs" ]]; then
    echo "# npm ci in sdk/node"
    (cd "$REPO/sdk/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || SKIP_node="npm ci in sdk/node failed"
  fi
fi
if has "$RUNTIMES" go; then
  if ! command -v go >/dev/null; then SKIP_go="go is not installed"
  else
    (cd "$REPO/sdk/go/examples/noop" && GOFLAGS="${GOFLAGS:-} -buildvcs=false" go build -o "$BENCH_TMP/go-noop" .) ||
      SKIP_go="go build of sdk/go/examples/noop failed"
  fi
fi

# The `runtime:` and `command:` lines of RUNTIME's no-op function.
function_lines() {
  case "$1" in
    inproc) printf '    runtime: inproc\n    inline: true\n    command: ["%s"]\n' "$NOOP_LIB" ;;
    python) printf '    runtime: stdio\n    command: ["%s", "%s"]\n' "$PY" "$REPO/sdk/python/examples/noop/main.py" ;;
    node) printf '    runtime: stdio\n    command: [node, "%s"]\n' "$REPO/sdk/node/examples/noop/main.js" ;;
    go) printf '    runtime: stdio\n    command: ["%s"]\n' "$BENCH_TMP/go-noop" ;;
    exec) printf '    runtime: exec\n    command: ["true"]\n' ;;
    *) die "unknown runtime '$1' (inproc python node go exec)" ;;
  esac
}
skip_reason() { case "$1" in node) echo "$SKIP_node" ;; go) echo "$SKIP_go" ;; *) echo "" ;; esac; }

# --- brokers ---------------------------------------------------------------------
echo "# e2e: $COUNT x 100 B per pair, concurrency $CONCURRENCY, ordering $ORDERING, $ROUNDS round(s); sources: $SOURCES; runtimes: $RUNTIMES"
echo "# before: $(load_note)"
if has "$SOURCES" kafka; then
  kafka_up
  # The broker's process, for its CPU per event: ours, or whoever listens on the port.
  if [[ -n "${KAFKA_DIR:-}" ]]; then KAFKA_PID=$(cat "$KAFKA_DIR/kafka.pid")
  else KAFKA_PID=$(ss -Hltnp "sport = :${KAFKA_BOOTSTRAP##*:}" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1); fi
fi
if has "$SOURCES" nats; then
  NPORT=$(free_port)
  NATS_URL="nats://127.0.0.1:$NPORT"
  nats-server -js -sd "$BENCH_TMP/nats-store" -a 127.0.0.1 -p "$NPORT" -l "$BENCH_TMP/nats-server.log" &
  NATS_PID=$!; track $NATS_PID
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$NPORT") 2>/dev/null && break; sleep 0.1; done
  echo "# nats: nats-server -js on $NATS_URL"
fi

PAYLOAD=$(python3 -c 'print("".join(chr(97 + i % 26) for i in range(100)))')
field() { sed -n "s/^RESULT e2e .*$1=\([^ ]*\).*/\1/p" | tail -1; }
PAIR=0

# run_pair SOURCE RUNTIME: prints the watcher's RESULT line (or fails).
run_pair() {
  local src=$1 rt=$2 dir broker sub mport pid topic broker_pid=""
  PAIR=$((PAIR + 1))
  dir="$BENCH_TMP/$src-$rt-$PAIR"; mkdir -p "$dir"
  case "$src" in
    local)
      topic=work
      broker_pid=""
      broker="  local: { kind: local, path: ./data/q.db }" ;;
    kafka)
      topic="e2e-$$-$PAIR"
      broker_pid=${KAFKA_PID:-}
      broker="  kafka: { kind: kafka, bootstrap: \"$KAFKA_BOOTSTRAP\", group: \"sluice-$topic\"${KAFKA_OPTIONS:+, options: { $KAFKA_OPTIONS \}} }" ;;
    nats)
      topic="e2e$PAIR.work"
      broker_pid=$NATS_PID
      broker="  nats: { kind: nats, url: \"$NATS_URL\", jetstream: { stream: E2E$PAIR, subjects: [\"$topic\", \"$topic.dlq\"] }${NATS_OPTIONS:+, options: { $NATS_OPTIONS \}} }" ;;
    *) die "unknown source '$src' (local kafka nats)" ;;
  esac
  mport=$(free_port)
  {
    echo "brokers:"; echo "$broker"
    echo "metrics: { listen: 127.0.0.1:$mport }"
    echo "engine: { drain_timeout: 2s }"
    echo "functions:"
    echo "  - name: noop"
    function_lines "$rt"
    echo "    concurrency: $CONCURRENCY"
    echo "    subscribe: [{ broker: $src, topic: \"$topic\", ordering: $ORDERING }]"
    [[ "$src" == nats ]] && echo "    dead_letter: { broker: nats, topic: \"$topic.dlq\" }"
  } >"$dir/sluice.yaml"
  case "$src" in
    local) (cd "$dir" && "$SLUICE" publish -c sluice.yaml "$topic" "$PAYLOAD" --count "$COUNT" >/dev/null) ;;
    kafka) "$BENCH_KAFKA" fill --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --count "$COUNT" --size 100 >/dev/null ;;
    nats) "$BENCH_NATS" prefill "$NATS_URL" "E2E$PAIR" "$topic" "$COUNT" 100 >/dev/null ;;
  esac || die "pre-publishing $COUNT events to $src failed"
  (cd "$dir" && exec "$SLUICE" run -c sluice.yaml >sluice.log 2>&1) &
  pid=$!; track "$pid"
  # The subshell execs sluice, so $pid is the engine.
  if ! "$PYTHON" "$E2E/watch.py" "$mport" "$pid" "$COUNT" "$MAX_SECONDS" "$broker_pid" >"$dir/watch.txt"; then
    stop_pid "$pid" || true
    die "$src x $rt: $(tail -3 "$dir/sluice.log")"
  fi
  stop_pid "$pid" || echo "# $src x $rt: sluice exited with status $?" >&2
  cat "$dir/watch.txt"
}

# kafka_baseline: the confluent-kafka loop on a fresh topic of COUNT events.
kafka_baseline() {
  local topic="e2e-$$-base-$PAIR"
  PAIR=$((PAIR + 1))
  "$BENCH_KAFKA" fill --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --count "$COUNT" --size 100 >/dev/null ||
    die "pre-publishing the baseline's topic failed"
  "$PY" "$E2E/kafka_loop.py" "$KAFKA_BOOTSTRAP" "$topic" "base-$topic" "$COUNT" "$MAX_SECONDS" ||
    die "the confluent-kafka loop failed"
}

declare -A RATE CPU WITH_START
printf "%-6s %-7s %-7s %10s %10s %10s %10s %6s\n" round source runtime "events/s" "cpu_us/ev" "worker_us" "broker_us" "idle%"
for r in $(seq 1 "$ROUNDS"); do
  wait_quiet
  for src in $SOURCES; do
    for rt in $RUNTIMES; do
      why=$(skip_reason "$rt")
      if [[ -n "$why" ]]; then ((r == 1)) && echo "# $src x $rt skipped: $why"; continue; fi
      out=$(run_pair "$src" "$rt")
      RATE[$src.$rt]+="$(field events_per_s <<<"$out") "; CPU[$src.$rt]+="$(field cpu_us_per_event <<<"$out") "
      [[ "$(field with_start <<<"$out")" == 1 ]] && WITH_START[$src.$rt]=1
      printf "%-6s %-7s %-7s %10s %10s %10s %10s %6s%s\n" "$r" "$src" "$rt" "$(field events_per_s <<<"$out")" "$(field cpu_us_per_event <<<"$out")" \
        "$(field worker_us_per_event <<<"$out")" "$(field broker_us_per_event <<<"$out")" "$(field idle_pct <<<"$out")" \
        "$([[ "$(field with_start <<<"$out")" == 1 ]] && echo "  (with start-up)")"
      if [[ "$src" == kafka && "$rt" == python ]]; then
        out=$(kafka_baseline)
        RATE[base]+="$(field events_per_s <<<"$out") "; CPU[base]+="$(field cpu_us_per_event <<<"$out") "
        printf "%-6s %-7s %-7s %10s %10s\n" "$r" kafka "loop.py" "$(field events_per_s <<<"$out")" "$(field cpu_us_per_event <<<"$out")"
      fi
    done
  done
done
echo "# after: $(load_note)"

med() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | median; }
echo
echo "(median of $ROUNDS round(s); cpu_us/ev: the engine's CPU per event, without its worker processes; vs local: the ratio to the local row of the same runtime)"
printf "%-8s %-8s %10s %10s %9s\n" source runtime "events/s" "cpu_us/ev" "vs local"
for src in $SOURCES; do
  for rt in $RUNTIMES; do
    [[ -n "${RATE[$src.$rt]:-}" ]] || continue
    rate=$(med "${RATE[$src.$rt]}"); cpu=$(med "${CPU[$src.$rt]}")
    vs=n/a; [[ -n "${RATE[local.$rt]:-}" ]] && vs=$(ratio "$rate" "$(med "${RATE[local.$rt]}")")
    printf "%-8s %-8s %10s %10s %8sx%s\n" "$src" "$rt" "$rate" "$cpu" "$vs" "${WITH_START[$src.$rt]:+  (a round timed with start-up: raise COUNT)}"
    echo "RESULT e2e_${src}_${rt} events_per_s=$rate cpu_us_per_event=$cpu vs_local=$vs" >&2
  done
done
if [[ -n "${RATE[base]:-}" && -n "${RATE[kafka.python]:-}" ]]; then
  b=$(med "${RATE[base]}"); s=$(med "${RATE[kafka.python]}")
  echo "kafka x python vs the confluent-kafka loop ($b events/s, $(med "${CPU[base]}") us/ev of its own CPU): $(ratio "$s" "$b")x (target >= 0.5x; vs local target >= 0.8x)"
  echo "RESULT e2e_kafka_python_loop events_per_s=$b ratio=$(ratio "$s" "$b")" >&2
fi
