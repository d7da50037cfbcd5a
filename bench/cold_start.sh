#!/usr/bin/env bash
# bench/cold_start: the time from a call reaching a function scaled to zero
# (`workers: {min: 0}`, no worker process) to its first result, per runtime, beside the
# bare start of an equivalent hello-world program (cold_start/driver.py says what each
# figure is). Lower is better; the ratio is sluice / baseline.
#
#   bench/cold_start.sh            # ROWS="python node go exec" ROUNDS=20
#   WORKER_TEMPLATE=false bench/cold_start.sh   # stdio rows without the worker template (A/B)
#   NODE_SDK=/other/checkout/sdk/node ROWS=node bench/cold_start.sh   # another Node SDK (A/B)
#
# Needs: python3; for python the SDK's venv (sdk/python/.venv, made by sdk/test.sh) or
# PYTHON= an interpreter with protobuf; node + sdk/node/node_modules; go. A row whose
# toolchain is missing is skipped with a note.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROWS=${ROWS:-python node go exec}
ROUNDS=${ROUNDS:-20}
WORKER_TEMPLATE=${WORKER_TEMPLATE:-true}
NODE_SDK=${NODE_SDK:-$REPO/sdk/node}
[[ -x $SLUICE ]] || die "$SLUICE not built (cmake --build build --target sluice)"
bench_init cold-start

PYTHON=${PYTHON:-$REPO/sdk/python/.venv/bin/python}
rows=()
for row in $ROWS; do
  case "$row" in
    python)
      if ! "$PYTHON" -c 'import google.protobuf' 2>/dev/null; then
        echo "# python skipped: $PYTHON has no protobuf (run sdk/test.sh or set PYTHON=)"; continue
      fi
      rows+=("python|[\"$PYTHON\", \"-c\", \"import sys; sys.stdout.write(sys.stdin.readline().upper())\"]|    runtime: stdio
    worker_template: $WORKER_TEMPLATE
    command: [\"$PYTHON\", \"$REPO/sdk/python/examples/echo/main.py\"]") ;;
    node)
      if ! command -v node >/dev/null || [[ ! -d $NODE_SDK/node_modules ]]; then
        echo "# node skipped: node or $NODE_SDK/node_modules missing (npm ci in sdk/node)"; continue
      fi
      rows+=("node|[\"node\", \"-e\", \"process.stdin.once('data', d => { process.stdout.write(d.toString().toUpperCase()); process.exit(0); })\"]|    runtime: stdio
    command: [\"node\", \"$NODE_SDK/examples/echo/main.js\"]") ;;
    go)
      command -v go >/dev/null || { echo "# go skipped: no go"; continue; }
      (cd "$REPO/sdk/go" && GOFLAGS=-buildvcs=false go build -o "$BENCH_TMP/go-echo" ./examples/echo) ||
        die "building sdk/go/examples/echo failed"
      (cd "$BENCH_DIR/cold_start/hello" && GOFLAGS=-buildvcs=false go build -o "$BENCH_TMP/go-hello" .) ||
        die "building cold_start/hello failed"
      rows+=("go|[\"$BENCH_TMP/go-hello\"]|    runtime: stdio
    command: [\"$BENCH_TMP/go-echo\"]") ;;
    exec)
      rows+=("exec|[\"cat\"]|    runtime: exec
    command: [cat]") ;;
    *) die "unknown row '$row' (python node go exec)" ;;
  esac
done

echo "# cold_start: $ROUNDS round(s) per row; $(load_note)"
wait_quiet
args=()
for r in "${rows[@]}"; do args+=(--row "$r"); done
python3 "$BENCH_DIR/cold_start/driver.py" --sluice "$SLUICE" --tmp "$BENCH_TMP" --rounds "$ROUNDS" --testdata "$REPO/sdk/testdata" "${args[@]}"
echo "# after: $(load_note)"
echo "(ms, median of $ROUNDS; base: the bare program's spawn -> answer; direct: the SDK worker spawned alone;"
echo " fork: the same forked from its worker template (Python), CPU its own; sync: POST /function -> answer;"
echo " event: POST /async-function -> the result's callback; warm: the same with the worker already running;"
echo " ratios in the RESULT lines are sluice / base: lower is better)"
