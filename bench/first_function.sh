#!/usr/bin/env bash
# The newcomer's first function, timed: for each language, from `sluice new` to the
# first published event's result visible in the engine's log — new, build.sh (on a
# warm package cache: pip/npm/Go module caches and this build already there), run,
# publish, result. Target (BENCHMARKS.md): under 60 s each.
#
#   bench/first_function.sh            # LANGS="python node go cpp" ROUNDS=1
#
# Each round runs in a fresh temp folder outside the checkout. Prints seconds per step.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LANGS=${LANGS:-python node go cpp}
ROUNDS=${ROUNDS:-1}
[[ -x $SLUICE ]] || die "$SLUICE not built"
bench_init first-function

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }

printf '%-8s %-6s %8s %8s %8s %8s\n' lang round new build run+pub total
for lang in $LANGS; do
  for round in $(seq 1 "$ROUNDS"); do
    dir=$BENCH_TMP/$lang-$round
    mkdir -p "$dir"
    t0=$(now)
    (cd "$dir" && "$SLUICE" new fn --lang "$lang" > /dev/null 2>&1)
    t1=$(now)
    sh "$dir/fn/build.sh" > "$dir/build.log" 2>&1 || { cat "$dir/build.log"; die "$lang: build.sh failed"; }
    t2=$(now)
    port=$(free_port)
    sed -i "s/127.0.0.1:8080/127.0.0.1:$port/" "$dir/fn/sluice.yaml"
    (cd "$dir/fn" && exec "$SLUICE" run > "$dir/engine.log" 2>&1) &
    track $!
    engine=$!
    (cd "$dir/fn" && "$SLUICE" publish fn 'first event' > /dev/null)
    deadline=$((SECONDS + 60))
    until grep -qi 'result: FIRST EVENT' "$dir/engine.log"; do
      ((SECONDS < deadline)) || { tail "$dir/engine.log"; die "$lang: no result within 60 s"; }
      sleep 0.02
    done
    t3=$(now)
    kill -TERM "$engine"; wait "$engine" 2>/dev/null || true
    printf '%-8s %-6s %8s %8s %8s %8s\n' "$lang" "$round" "$(secs "$t0" "$t1")" \
      "$(secs "$t1" "$t2")" "$(secs "$t2" "$t3")" "$(secs "$t0" "$t3")"
  done
done
