#!/usr/bin/env bash
# sluice's two commands (README.md):
#   ./sluice.sh demo   installs what is missing, builds, runs the quickstart on the embedded queue
#   ./sluice.sh test   installs what is missing, builds, runs every test (Release + ASan/UBSan + TSan,
#                      a short fault soak, and each libFuzzer target for a few seconds)
#   ./sluice.sh fuzz [SECONDS]   runs every libFuzzer target for SECONDS (default 60) each
#   ./sluice.sh soak [SECONDS]   the fault soak, each scenario loading for SECONDS (default 120)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc)}

# Debian packages, by name (../shared/PACKAGES.md).
PACKAGES=(
  cmake ninja-build g++ pkg-config curl
  libprotobuf-dev protobuf-compiler libboost-dev libboost-system-dev nlohmann-json3-dev
  prometheus-cpp-dev libsqlite3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev google-mock librdkafka-dev libnats-dev libssl-dev
  libgoogle-perftools-dev
)
TEST_PACKAGES=(nats-server kcat prometheus python3-yaml wrk hyperfine openjdk-17-jdk-headless maven
  clang libclang-rt-14-dev)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build DIR [cmake args...] -- [targets...]
build() {
  local dir=$1; shift
  local args=() targets=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  targets=("$@")
  # A directory configured with another compiler than the one asked for starts afresh
  # (CMake cannot change the compiler of a configured tree).
  local want have
  want=$(printf '%s\n' "${args[@]}" | sed -n 's/^-DCMAKE_CXX_COMPILER=//p')
  have=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt" 2>/dev/null || true)
  if [ -n "$want" ] && [ -n "$have" ] && [ "$(basename "$have")" != "$(basename "$want")" ]; then
    rm -rf "$dir"
  fi
  [ -f "$dir/build.ninja" ] || cmake -S "$ROOT" -B "$dir" -G Ninja "${args[@]}" >/dev/null
  if [ ${#targets[@]} -gt 0 ]; then
    cmake --build "$dir" -j "$JOBS" --target "${targets[@]}"
  else
    cmake --build "$dir" -j "$JOBS"
  fi
}

cmd_demo() {
  ensure_packages "${PACKAGES[@]}"
  say "building (Release)"
  build build -DCMAKE_BUILD_TYPE=Release -- sluice
  rm -rf "$ROOT/examples/data"
  say "starting sluice on examples/quickstart.yaml (Ctrl-C drains and stops)"
  cat >&2 <<'MSG'

  In another terminal:
    curl -s -X POST --data 'hello sluice' -H 'Content-Type: text/plain' http://127.0.0.1:8080/topics/greetings
    ./build/sluice publish -c examples/quickstart.yaml greetings 'hi from the CLI'
    ./build/sluice publish -c examples/quickstart.yaml greetings 'fail please'   # goes to the DLQ
  Then see the result:
    cat examples/data/shouted.log                                 # output of the `shout` function
    ./build/sluice functions -c examples/quickstart.yaml
    ./build/sluice dlq list -c examples/quickstart.yaml
    curl -s http://127.0.0.1:9464/metrics | grep ^sluice_

MSG
  exec "$ROOT/build/sluice" run -c examples/quickstart.yaml
}

# One real Kafka broker (KRaft) for the whole suite; every Kafka test uses its own
# topics and groups on it (SLUICE_TEST_KAFKA_BOOTSTRAP). Stopped on exit.
start_kafka() {
  KAFKA_DIR=$(mktemp -d /tmp/sluice-kafka.XXXXXX)
  trap 'tests/kafka/kafka.sh stop "$KAFKA_DIR" >/dev/null 2>&1 || true; rm -rf "$KAFKA_DIR"' EXIT
  tests/kafka/kafka.sh fetch
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  say "starting a real Kafka broker (KRaft) on 127.0.0.1:$port"
  SLUICE_TEST_KAFKA_BOOTSTRAP=$(tests/kafka/kafka.sh start "$KAFKA_DIR" "$port")
  export SLUICE_TEST_KAFKA_BOOTSTRAP
}

# fuzz SECONDS: builds build-fuzz (clang, libFuzzer + ASan/UBSan; tests/fuzz/README.md)
# and runs every target for SECONDS on its seed corpus and regression inputs. New
# inputs go to build-fuzz/corpus/<target> (kept between runs, not in git; with
# SLUICE_FUZZ_MERGE=1 the ones that add coverage are merged into tests/fuzz/corpus).
# Prints each target's executions/s and coverage; fails on any crash, leak or timeout
# (the input is left in build-fuzz/crashes/<target>/).
fuzz() {
  local secs=$1 dir="$ROOT/build-fuzz" src="$ROOT/tests/fuzz" failed=0
  build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -- fuzz
  printf '%-24s %10s %7s %7s %7s  %s\n' target exec/s cov ft corpus result >&2
  local t
  for t in $(cd "$src/corpus" && ls); do
    local work="$dir/corpus/$t" crashes="$dir/crashes/$t/" log="$dir/logs/$t.log"
    mkdir -p "$work" "$crashes" "$dir/logs"
    local inputs=("$work" "$src/corpus/$t")
    [ -d "$src/regressions/$t" ] && inputs+=("$src/regressions/$t")
    local opts=(-max_total_time="$secs" -max_len=16384 -rss_limit_mb=2048 -timeout=10
                -print_final_stats=1 -artifact_prefix="$crashes")
    [ -f "$src/dict/$t.dict" ] && opts+=(-dict="$src/dict/$t.dict")
    # nats.c frees messages on its GC thread: every input would look like a leak and
    # trigger a full LeakSanitizer scan (ASan still checks every access).
    [ "$t" = nats_msg ] && opts+=(-detect_leaks=0)
    local result=ok
    if ! "$dir/tests/fuzz/fuzz_$t" "${opts[@]}" "${inputs[@]}" >"$log" 2>&1; then
      result="FAILED: $(ls -t "$crashes" | head -1 | sed "s|^|$crashes|") (log: $log)"
      failed=1
    fi
    local done_line eps
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    printf '%-24s %10s %7s %7s %7s  %s\n' "$t" "${eps:--}" \
      "$(grep -o 'cov: [0-9]*' <<<"$done_line" | cut -d' ' -f2)" \
      "$(grep -o 'ft: [0-9]*' <<<"$done_line" | cut -d' ' -f2)" \
      "$(grep -o 'corp: [0-9]*' <<<"$done_line" | cut -d' ' -f2)" "$result" >&2
    if [ "${SLUICE_FUZZ_MERGE:-0}" = 1 ] && [ "$result" = ok ]; then
      "$dir/tests/fuzz/fuzz_$t" -merge=1 -max_len=16384 "$src/corpus/$t" "$work" >>"$log" 2>&1
    fi
  done
  return $failed
}

cmd_fuzz() {
  ensure_packages "${PACKAGES[@]}" clang libclang-rt-14-dev
  say "libFuzzer targets, ${1}s each"
  if ! fuzz "$1"; then say "FAILED"; exit 1; fi
  say "no crash"
}

# The test command's bookkeeping: each step's time and outcome, printed again at the end
# so that the last lines of a long log say what failed.
SUMMARY=() FAILED_STEPS=()
step_start() { STEP=$1; STEP_T0=$SECONDS; say "$STEP"; }
step_end() {  # step_end OK|FAILED [detail]
  local line
  line=$(printf '%-7s %4ds  %s' "$1" $((SECONDS - STEP_T0)) "$STEP")
  [ $# -gt 1 ] && line+=" — $2"
  SUMMARY+=("$line")
  [ "$1" = FAILED ] && FAILED_STEPS+=("$line")
  return 0
}

# ctest_step DIR [ctest args...]: runs ctest in DIR; a test that fails is run once more
# alone. One that passes then is reported as flaky by name (a bug to fix, not a pass to
# forget); one that fails twice fails the step.
ctest_step() {
  local dir=$1; shift
  if (cd "$dir" && ctest --output-on-failure "$@"); then step_end OK; return 0; fi
  local list="$dir/Testing/Temporary/LastTestsFailed.log" first=""
  [ -f "$list" ] && first=$(cut -d: -f2- "$list" | paste -sd' ')
  if [ -z "$first" ]; then step_end FAILED "ctest failed before naming a test"; return 0; fi
  say "run once more, alone: $first"
  if (cd "$dir" && ctest --output-on-failure --rerun-failed --timeout 600); then
    step_end OK "flaky, passed on a second run: $first"
  else
    local second flaky
    second=$(cut -d: -f2- "$list" | paste -sd' ')
    flaky=$(comm -23 <(tr ' ' '\n' <<<"$first" | sort) <(tr ' ' '\n' <<<"$second" | sort) | paste -sd' ')
    step_end FAILED "failed twice: $second${flaky:+; flaky, passed on a second run: $flaky}"
  fi
}

cmd_test() {
  ensure_packages "${PACKAGES[@]}" "${TEST_PACKAGES[@]}"
  step_start "Release build"
  if build build -DCMAKE_BUILD_TYPE=Release; then step_end OK; else
    step_end FAILED; say "FAILED: the Release build"; exit 1; fi

  step_start "SDKs: Python (pytest), Node.js (node --test), Go (go test); each package installed alone and run"
  # Like a CTest test, a failure is run once more (the suites install from PyPI, npm and
  # the Go proxy); a pass on the second run is named as flaky.
  if SLUICE_BINARY="$ROOT/build/sluice" bash sdk/test.sh; then step_end OK
  elif say "run the SDK suites once more" && SLUICE_BINARY="$ROOT/build/sluice" bash sdk/test.sh; then
    step_end OK "flaky, passed on a second run"
  else step_end FAILED "failed twice"; fi

  step_start "the whole suite (unit + integration + e2e)"
  start_kafka
  ctest_step build -j "$JOBS" --timeout 600

  # Sanitizer builds at -O1 -g1 (the sanitizers' recommended level; line tables for their
  # reports): half the compile time of -O2 -g, which dominates the test command.
  local san_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
                   "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")

  # clang: its ASan+UBSan build takes less CPU than GCC's (GCC's UBSan instrumentation
  # is the slow part), and the libFuzzer build below uses clang too.
  step_start "AddressSanitizer + UndefinedBehaviorSanitizer build (clang): unit tests"
  if build build-asan "${san_flags[@]}" -DSLUICE_SANITIZE=address,undefined \
       -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSLUICE_BUILD_BENCH=OFF -- unit_tests; then
    ctest_step build-asan -L unit -j "$JOBS" --timeout 600
  else step_end FAILED "build"; fi

  step_start "ThreadSanitizer build: dispatcher, inproc and stdio runtime tests, stdio and http on a lent loop, callbacks, lag loop"
  if build build-tsan "${san_flags[@]}" -DSLUICE_SANITIZE=thread \
       -DSLUICE_BUILD_BENCH=OFF -- dispatcher_test inproc_runtime_test stdio_runtime_test \
       stdio_runtime_shared_loop_test http_runtime_shared_loop_test io_loop_test http_callback_test \
       api_callbacks_test lag_loop_test dispatcher_pause_test; then
    TSAN_OPTIONS=halt_on_error=1 ctest_step build-tsan \
      -R '^(RunSpinning|Dispatcher|DispatcherRetryTopic|DispatcherPause|RetryRecord|CommitTracker|InprocTest|StdioTest|Modes/StdioStartTest|RuntimeLoop|shared_loop|CallbackSink|Callbacks|CallbackEvent|LagLoop)\.' \
      --timeout 600
  else step_end FAILED "build"; fi

  step_start "libFuzzer targets, 5 s each (longer: ./sluice.sh fuzz SECONDS)"
  if fuzz 5; then step_end OK; else step_end FAILED; fi

  say "summary (outcome, seconds, step)"
  printf '  %s\n' "${SUMMARY[@]}" >&2
  if [ ${#FAILED_STEPS[@]} -ne 0 ]; then
    say "FAILED:"
    printf '  %s\n' "${FAILED_STEPS[@]}" >&2
    exit 1
  fi
  say "all tests passed"
}

# The fault soak (tests/soak) for longer than the test command's short form: each
# scenario loads for SECONDS while workers, the engine and the brokers are killed, the
# disk fills and fds run out.
cmd_soak() {
  ensure_packages "${PACKAGES[@]}" "${TEST_PACKAGES[@]}"
  build build -DCMAKE_BUILD_TYPE=Release -- sluice soak_test
  tests/kafka/kafka.sh fetch
  (cd build && SLUICE_SOAK_SECONDS="$1" ctest -L soak --output-on-failure -V --timeout $(($1 * 20 + 600)))
}

case "${1:-}" in
  demo) cmd_demo ;;
  test) cmd_test ;;
  fuzz) cmd_fuzz "${2:-60}" ;;
  soak) cmd_soak "${2:-120}" ;;
  *) echo "usage: $0 demo|test|fuzz [SECONDS]|soak [SECONDS]" >&2; exit 2 ;;
esac
