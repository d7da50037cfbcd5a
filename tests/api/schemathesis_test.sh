#!/usr/bin/env bash
# Runs schemathesis (PyPI) against a live `sluice run` with docs/openapi.yaml: every
# route gets generated requests (valid and invalid) and every answer must be in the
# spec (status code, content type, headers, body schema) and not a 5xx of sluice's own.
#
# Usage: schemathesis_test.sh SLUICE_BINARY OPENAPI_YAML WORK_DIR [MAX_SECONDS]
# The venv with schemathesis is made once in WORK_DIR/venv (pinned: requirements.txt).
set -euo pipefail
sluice=$1 spec=$2 work=$3 max_time=${4:-${SLUICE_SCHEMATHESIS_SECONDS:-30}}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
venv=$work/venv
source "$here/../support/scripts.sh"
make_venv "$venv" "$here/requirements.txt"

run=$(mktemp -d "$work/run.XXXXXX")
engine_pid=
cleanup() {
  [[ -n $engine_pid ]] && kill "$engine_pid" 2>/dev/null && wait "$engine_pid" 2>/dev/null
  rm -rf "$run"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=schemathesis-$RANDOM$RANDOM
echo "$token" > "$run/tokens"
cat > "$run/sluice.yaml" <<YAML
brokers:
  local: { kind: local, path: $run/data/sluice.db }
http:
  listen: 127.0.0.1:$port
  auth: { bearer_tokens_file: $run/tokens }
  max_body: 64KiB
metrics: { listen: 127.0.0.1:0 }
engine: { control_key_file: $run/control.key }
functions:
  - name: echo
    runtime: exec
    command: [cat]
    timeout: 5s
    max_age: 1h
    subscribe:
      - { broker: local, topic: greetings, filter: { any: [{ sql: "type LIKE 'greet.%'" }, { not: { exact: { source: /spam } } }] } }
  - name: upper
    runtime: exec
    command: [tr, a-z, A-Z]
    subscribe:
      - { broker: local, topic: words, ordering: key }
    rate_limit: { per_second: 100000 }   # shown by GET /system/functions; never reached
YAML
start_engine "$sluice" "$run/sluice.yaml" "$run/engine.log" "$port" 10

status=0
(cd "$run" && "$venv/bin/schemathesis" run "$spec" \
   --url "http://127.0.0.1:$port" -H "Authorization: Bearer $token" \
   --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
   --max-time "$max_time" --seed 20261206 --workers 1 --no-color) || status=$?
if ! kill -0 "$engine_pid" 2>/dev/null; then
  echo "FAIL: sluice died during the run"; tail -50 "$run/engine.log"; exit 1
fi
if (( status != 0 )); then tail -30 "$run/engine.log"; fi
exit "$status"
