# Shared by the bench/*.sh scripts (sourced, not run). Bash.
#
# Every process a script starts is recorded with `track PID`; `bench_cleanup` (the
# EXIT trap that bench_init installs) ends exactly those, by pid, and removes the
# temp dir. Every wait here is bounded in time.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${BUILD:-$REPO/build}
SLUICE=${SLUICE:-$BUILD/sluice}
BENCH_PIDS=()

track() { BENCH_PIDS+=("$1"); }

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [[ -n "${BENCH_TMP:-}" && -d "$BENCH_TMP" && -z "${KEEP_TMP:-}" ]]; then rm -rf "$BENCH_TMP"; fi
}

# bench_init NAME: temp dir in $BENCH_TMP, cleanup on exit.
bench_init() {
  BENCH_TMP=$(mktemp -d "/tmp/sluice-bench-$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

die() { echo "error: $*" >&2; exit 1; }

# Kafka for a benchmark: kafka_up keeps KAFKA_BOOTSTRAP when given, else starts a
# single-node Kafka 3.9 with tests/kafka/kafka.sh in $BENCH_TMP/kafka (KAFKA_DIR) and
# prints a note; kafka_cleanup (the EXIT trap of a script that may start one, set
# after bench_init) stops that broker, then runs bench_cleanup.
kafka_up() {
  if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
    KAFKA_DIR="$BENCH_TMP/kafka"
    KAFKA_BOOTSTRAP=$("$REPO/tests/kafka/kafka.sh" start "$KAFKA_DIR" "$(free_port)") ||
      die "the Kafka broker did not start"
    echo "# broker: Kafka 3.9 (KRaft, single node) on $KAFKA_BOOTSTRAP, data in $KAFKA_DIR"
  else
    echo "# broker: $KAFKA_BOOTSTRAP (given)"
  fi
}
kafka_cleanup() {
  [[ -n "${KAFKA_DIR:-}" ]] && "$REPO/tests/kafka/kafka.sh" stop "$KAFKA_DIR" || true
  bench_cleanup
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed"; }
# The Kafka scripts' BASE_OPTIONS ("key=value ...", librdkafka settings of the plain
# consumer) as bench_kafka arguments in BASE_SETS; a word without '=' is refused
# before anything starts.
base_sets() {
  BASE_SETS=()
  local kv
  for kv in ${BASE_OPTIONS:-}; do
    [[ "$kv" == ?*=* ]] || die "BASE_OPTIONS: '$kv' is not key=value"
    BASE_SETS+=(--set "$kv")
  done
}

# A free loopback TCP port (bound to port 0 by the kernel, then released).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http PORT PATH SECONDS: until GET answers 200, or fail.
wait_http() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$1$2" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# stop_pid PID: SIGTERM, wait up to 30 s, then SIGKILL. Returns the exit status.
stop_pid() {
  local pid=$1 rc=0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# The sum of the END column of `sluice lag` for TOPIC: events stored in it.
stored_events() {
  "$SLUICE" lag -c "$1" | awk -v t="$2" '$2 == t && $6 ~ /^[0-9]+$/ {s += $6} END {print s + 0}'
}
# The sum of the LAG column for TOPIC.
topic_lag() {
  "$SLUICE" lag -c "$1" | awk -v t="$2" '$2 == t && $7 ~ /^[0-9]+$/ {s += $7} END {print s + 0}'
}

# One line about the machine's load right now (other engineers build on it).
load_note() {
  local top
  top=$(ps -eo pcpu=,comm= --sort=-pcpu | head -3 | awk '{printf "%s %s%%, ", $2, $1}')
  echo "loadavg $(cut -d' ' -f1-3 /proc/loadavg); top: ${top%, }"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# CPU time (user+system, in clock ticks) used so far by PID and its reaped children.
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
CLK_TCK=$(getconf CLK_TCK)
# cpu_pct TICKS SECONDS: percent of one core.
cpu_pct() { awk -v t="$1" -v s="$2" -v h="$CLK_TCK" 'BEGIN { if (s > 0) printf "%.0f", 100 * t / h / s; else print 0 }'; }

# fsync latency of the filesystem holding DIR (the queue's group commit waits on it).
fsync_probe() {
  python3 - "$1" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], ".fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
n, t = 100, time.perf_counter()
for _ in range(n):
    os.write(fd, b"x" * 4096)
    os.fsync(fd)
dt = (time.perf_counter() - t) / n
os.close(fd)
os.unlink(path)
print(f"{dt * 1000:.2f} ms per 4 KiB write+fsync ({1 / dt:.0f}/s)")
PY
}

# The machine, in a few lines (for BENCHMARKS.md).
machine_note() {
  local disk
  disk=$(lsblk -dno NAME,ROTA,SIZE,MODEL 2>/dev/null | awk '$1 !~ /^(zram|loop)/' | head -3 | tr '\n' ';')
  echo "nproc: $(nproc)"
  echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "ram: $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "disk: ${disk%;} (fs of /tmp: $(df -T /tmp | awk 'NR == 2 {print $2}'))"
  echo "fsync: $(fsync_probe /tmp)"
  echo "load: $(load_note)"
}

# Percent of all CPUs busy over the next SECONDS (default 2), from /proc/stat.
cpu_busy_pct() {
  local a b
  a=$(awk '/^cpu / {print $2+$3+$4+$6+$7+$8, $5}' /proc/stat)
  sleep "${1:-2}"
  b=$(awk '/^cpu / {print $2+$3+$4+$6+$7+$8, $5}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
    busy = y[1] - x[1]; idle = y[2] - x[2]; printf "%.0f\n", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }'
}

# The machine is shared (other engineers build on it). With WAIT_QUIET=1 (default),
# wait until less than QUIET_BUSY percent (15) of the CPUs are busy for 2 s, at most
# QUIET_TIMEOUT seconds (300); then go on and say so. Prints one note line.
wait_quiet() {
  [[ "${WAIT_QUIET:-1}" == 1 ]] || { echo "# (not waiting for a quiet machine)"; return 0; }
  local deadline=$((SECONDS + ${QUIET_TIMEOUT:-300})) busy waited=$SECONDS
  while :; do
    busy=$(cpu_busy_pct 2)
    if ((busy < ${QUIET_BUSY:-15})); then
      echo "# quiet: ${busy}% busy (waited $((SECONDS - waited)) s)"; return 0
    fi
    if ((SECONDS >= deadline)); then
      echo "# NOT QUIET: ${busy}% busy after $((SECONDS - waited)) s of waiting; $(load_note)"; return 0
    fi
    sleep 3
  done
}
