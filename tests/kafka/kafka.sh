#!/usr/bin/env bash
# A real single-node Apache Kafka 3.9 (KRaft: broker and controller in one JVM) for
# sluice's integration tests. Needs only java (17+), mvn and kcat.
#
#   kafka.sh fetch             # download the broker's jars once (Maven Central, cached)
#   kafka.sh start DIR PORT    # format DIR, start on 127.0.0.1:PORT, wait until it answers;
#                              # after a stop, the same DIR starts the same broker again
#                              # (its cluster id, controller port and data are kept)
#   kafka.sh stop DIR          # stop the broker started in DIR (idempotent)
#   kafka.sh classpath         # fetch, then print the Java classpath of the jars
#                              # (tests that ask the Java client itself, e.g. for
#                              # the partition of a key: `java -cp "$(...)" X.java`)
#
# The jars go to $SLUICE_KAFKA_LIBS (default: <repo>/.cache/kafka-libs); Maven's own
# cache is ~/.m2. A fetch is guarded by a lock, so parallel test processes share one.
# DIR holds server.properties, the pid file, logs/ (the data) and kafka.log (output).
# `start` prints the bootstrap address on success; on failure it prints the tail of
# the broker's output and exits non-zero.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
libs="${SLUICE_KAFKA_LIBS:-$repo/.cache/kafka-libs}"
start_timeout="${SLUICE_KAFKA_START_TIMEOUT:-90}"  # seconds

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
  command -v java >/dev/null || die "java is not installed (apt-get install openjdk-17-jdk-headless)"
  command -v mvn >/dev/null || die "mvn is not installed (apt-get install maven)"
  mkdir -p "$libs"
  exec 9>"$libs/.lock"
  flock 9
  if [[ ! -f "$libs/.complete" ]]; then
    echo "kafka.sh: fetching Kafka jars into $libs (once)" >&2
    mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs" >&2 ||
      die "mvn could not fetch the Kafka jars (is Maven Central reachable?)"
    touch "$libs/.complete"
  fi
  flock -u 9
}

# A loopback port nobody listens on (best effort: checked by connecting).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port found"
}

write_config() {
  local dir="$1" port="$2" ctrl="$3"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/logs
num.partitions=6
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
EOF
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
log4j.logger.state.change.logger=WARN
EOF
}

java_opts() {
  echo "-Xmx512m -Xms128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true"
  echo "-Dlog4j.configuration=file:$1/log4j.properties"
}

start() {
  local dir="$1" port="$2"
  [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
  command -v kcat >/dev/null || die "kcat is not installed (apt-get install kcat)"
  fetch
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [[ -f "$dir/kafka.pid" ]] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
    die "a broker already runs from $dir (pid $(cat "$dir/kafka.pid"))"
  fi
  local ctrl
  if [[ -f "$dir/controller.port" ]]; then
    ctrl="$(cat "$dir/controller.port")"
  else
    ctrl="$(free_port)"
    while [[ "$ctrl" == "$port" ]]; do ctrl="$(free_port)"; done
    echo "$ctrl" >"$dir/controller.port"
  fi
  write_config "$dir" "$port" "$ctrl"
  local opts; opts="$(java_opts "$dir" | tr '\n' ' ')"
  # A cluster id is 16 random bytes, url-safe base64 without padding. It may start
  # with '-' (1 in 64), so it is passed as --cluster-id=ID, never as a separate word.
  local id
  if [[ -f "$dir/cluster.id" ]]; then
    id="$(cat "$dir/cluster.id")"
  else
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    echo "$id" >"$dir/cluster.id"
  fi
  # shellcheck disable=SC2086
  java $opts -cp "$libs/*" kafka.tools.StorageTool format --cluster-id="$id" \
    -c "$dir/server.properties" --ignore-formatted >"$dir/format.log" 2>&1 ||
    { cat "$dir/format.log" >&2; die "formatting the storage in $dir failed"; }
  # setsid: the broker gets its own session, so the caller's signals don't reach it
  # and stop() can end it alone.
  # shellcheck disable=SC2086
  setsid java $opts -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
    >"$dir/kafka.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/kafka.pid"
  local deadline=$((SECONDS + start_timeout))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$dir/kafka.log" "$dir/server.log" >&2 2>/dev/null || true
      die "the broker exited during start-up (see $dir/server.log)"
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
       kcat -b "127.0.0.1:$port" -L -m 2 >/dev/null 2>&1; then
      echo "127.0.0.1:$port"
      return 0
    fi
    sleep 0.2
  done
  tail -n 30 "$dir/server.log" >&2 2>/dev/null || true
  stop "$dir"
  die "the broker did not answer on 127.0.0.1:$port within ${start_timeout}s"
}

stop() {
  local dir="$1"
  [[ -f "$dir/kafka.pid" ]] || return 0
  local pid; pid="$(cat "$dir/kafka.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do  # up to 20 s for a clean shutdown, then kill
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/kafka.pid"
}

case "${1:-}" in
  fetch) fetch ;;
  start) [[ $# -eq 3 ]] || die "usage: kafka.sh start DIR PORT"; start "$2" "$3" ;;
  stop) [[ $# -eq 2 ]] || die "usage: kafka.sh stop DIR"; stop "$2" ;;
  classpath) fetch; echo "$libs/*" ;;
  *) die "usage: kafka.sh fetch | start DIR PORT | stop DIR | classpath" ;;
esac
