#!/usr/bin/env bash
# The outputs sluice publishes to Kafka decode with the CloudEvents Python SDK's Kafka
# binding (PyPI `cloudevents`, no custom unmarshaller): two exec functions, one with
# `output.content_type: application/json` and one with the default, read an event each
# and publish their result; the records are read back with kcat and decoded.
#
# Usage: cloudevents_kafka_test.sh SLUICE_BINARY KAFKA_SH WORK_DIR
# Kafka: SLUICE_TEST_KAFKA_BOOTSTRAP, else a broker started with KAFKA_SH in WORK_DIR.
# The venv with the SDK is made once in WORK_DIR/venv (pinned: requirements.txt).
# Exits 77 (CTest: skipped) when a tool it needs is missing.
set -euo pipefail
sluice=$1 kafka_sh=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
need=(kcat curl python3)
[[ -n ${SLUICE_TEST_KAFKA_BOOTSTRAP:-} ]] || need+=(java mvn)  # kafka.sh start
for tool in "${need[@]}"; do
  command -v "$tool" > /dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
venv=$work/venv
source "$here/../support/scripts.sh"
make_venv "$venv" "$here/requirements.txt"

run=$(mktemp -d "$work/run.XXXXXX")
engine_pid= kafka_dir=
cleanup() {
  [[ -n $engine_pid ]] && kill "$engine_pid" 2>/dev/null && wait "$engine_pid" 2>/dev/null
  [[ -n $kafka_dir ]] && "$kafka_sh" stop "$kafka_dir" > /dev/null 2>&1
  rm -rf "$run"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
bootstrap=${SLUICE_TEST_KAFKA_BOOTSTRAP:-}
if [[ -z $bootstrap ]]; then
  kafka_dir=$run/kafka
  mkdir -p "$kafka_dir"
  bootstrap=$("$kafka_sh" start "$kafka_dir" "$(free_port)")
fi

port=$(free_port)
id=ce$$-$RANDOM
cat > "$run/sluice.yaml" <<YAML
brokers:
  kafka: { kind: kafka, bootstrap: "$bootstrap", group: $id }
http: { listen: 127.0.0.1:$port }
engine: { control_key_file: $run/control.key }
functions:
  - name: greet
    runtime: exec
    command: [sh, -c, 'printf "{\"greeting\": \"%s\"}" "\$(cat)"']
    subscribe: [{ topic: $id.json-in }]
    output: { topic: $id.json-out, content_type: application/json }
  - name: echo
    runtime: exec
    command: [cat]
    subscribe: [{ topic: $id.raw-in }]
    output: { topic: $id.raw-out }
YAML
start_engine "$sluice" "$run/sluice.yaml" "$run/engine.log" "$port" 30

curl -fsS -X POST --data-binary hello -H 'Content-Type: text/plain' \
  "http://127.0.0.1:$port/topics/$id.json-in" > /dev/null
curl -fsS -X POST --data-binary 'plain bytes' -H 'Content-Type: text/plain' \
  "http://127.0.0.1:$port/topics/$id.raw-in" > /dev/null

# The first record of a topic, polled until it is there (the topic appears with the
# function's first output), within 60 s.
read_one() {
  local out deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    out=$(kcat -C -b "$bootstrap" -t "$1" -o beginning -c 1 -e -J -q 2> /dev/null) || true
    [[ -n $out ]] && { printf '%s\n' "$out"; return; }
    sleep 0.2
  done
  echo "no record on $1 within 60 s" >&2
  cat "$run/engine.log" >&2
  return 1
}
record=$(read_one "$id.json-out")
"$venv/bin/python" "$here/decode_output.py" application/json '{"greeting": "hello"}' <<< "$record"
record=$(read_one "$id.raw-out")
"$venv/bin/python" "$here/decode_output.py" application/octet-stream '"plain bytes"' <<< "$record"
