#!/usr/bin/env bash
# Builds each SDK's artifact as a user receives it, installs only that artifact into a
# fresh environment outside the checkout, and runs the echo example there as a `stdio`
# function under a real engine: publish an event, wait for its result.
#   python  a wheel (`pip wheel`), installed into a new venv; `mypy --strict` (PyPI, in a
#           venv of its own) on the typed example against the installed package
#   node    an `npm pack` tarball, installed into a new npm project; the example run both
#           with `require` (main.js) and `import` (main.mjs); `tsc --noEmit` (typescript
#           and @types/node from npm) on the TypeScript example (main.ts)
#   go      the module directory as a module zip holds it, used from a new module by a
#           `replace` directive (GOFLAGS=-mod=mod; the SDK's go.sum, so no checksum lookups)
# Each also checks that the installed package reports sluice's version (sdk/version.sh).
# Usage: sdk/package_test.sh SLUICE_BINARY [python] [node] [go]   (default: all three)
# Needs: python3 (venv, pip), node + npm, go; PyPI, npm and the Go proxy for dependencies
# not already cached. Every wait has a deadline; exits non-zero naming what failed.
set -euo pipefail
sdk="$(cd "$(dirname "$0")" && pwd)"
if [[ $# -lt 1 || ! -x "$1" ]]; then
  echo "usage: sdk/package_test.sh SLUICE_BINARY [python] [node] [go]" >&2
  exit 2
fi
sluice="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift
langs=("$@")
[[ ${#langs[@]} -gt 0 ]] || langs=(python node go)
version="$("$sdk/version.sh" "$sluice")"

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-sdk-packages.XXXXXX")"
engine_pid=""
cleanup() {
  if [[ -n "$engine_pid" ]]; then kill -KILL "$engine_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # (timeout's SIGTERM) still runs cleanup

say() { echo "--- packages: $*"; }
fail() { echo "packages: $*" >&2; exit 1; }

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds; false at the deadline.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# serve DIR NAME COMMAND...: runs COMMAND (an echo example) as the stdio function NAME
# under build/sluice on a local queue in DIR, publishes one event and waits for the
# result to reach DIR/NAME.out, then drains the engine (exit 0).
serve() {
  local dir=$1 name=$2
  shift 2
  local cmd="" arg
  for arg in "$@"; do cmd+="${cmd:+, }\"$arg\""; done
  cat >"$dir/sluice.yaml" <<EOF
brokers:
  local: { kind: local, path: ./data/q.db }
functions:
  - name: $name
    runtime: stdio
    command: [$cmd]
    env: { HOME: "$dir" }
    subscribe: [{ broker: local, topic: in }]
    output: { broker: local, topic: out }
  - name: collect
    runtime: exec
    command: [sh, -c, 'printf "%s %s\\n" "\$CE_TYPE" "\$(cat)" >> "$dir/$name.out"']
    subscribe: [{ broker: local, topic: out }]
EOF
  "$sluice" publish -c "$dir/sluice.yaml" in "hello from $name" >/dev/null
  "$sluice" run -c "$dir/sluice.yaml" >"$dir/engine.log" 2>&1 &
  engine_pid=$!
  local want="io.sluice.function.result HELLO FROM ${name^^}"
  if ! wait_for 60 grep -qxF "$want" "$dir/$name.out" 2>/dev/null; then
    cat "$dir/engine.log" >&2
    fail "$name: no '$want' in $dir/$name.out within 60 s"
  fi
  kill -TERM "$engine_pid"
  if ! wait_for 30 eval '! kill -0 "$engine_pid" 2>/dev/null'; then
    cat "$dir/engine.log" >&2
    fail "$name: the engine did not drain within 30 s of SIGTERM"
  fi
  local rc=0
  wait "$engine_pid" || rc=$?
  engine_pid=""
  if [[ $rc -ne 0 ]]; then
    cat "$dir/engine.log" >&2
    fail "$name: the engine exited $rc after SIGTERM"
  fi
  say "$name: published an event and saw '$want'"
}

# same WHAT GOT [WANT]: GOT must be WANT (default: sluice's version).
same() { [[ "$2" == "${3:-$version}" ]] || fail "$1 reports '$2', expected '${3:-$version}'"; }

python_package() {
  local d="$work/python"
  mkdir -p "$d/src" "$d/dist" "$d/fn"
  # a clean copy of the source (no venv or earlier build output) builds the wheel
  tar -C "$sdk/python" --exclude=.venv --exclude=build --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=.pytest_cache -cf - . | tar -C "$d/src" -xf -
  python3 -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$d/dist" "$d/src"
  local wheel="$d/dist/sluice_sdk-$version-py3-none-any.whl"
  [[ -f "$wheel" ]] || fail "python: expected $wheel, built: $(ls "$d/dist")"
  python3 - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for want in ("sluice_sdk/py.typed", "sluice_sdk/schema.binpb", "LICENSE"):
    if not any(n == want or n.endswith(".dist-info/licenses/" + want) for n in names):
        sys.exit(f"packages: python: the wheel lacks {want}: {names}")
EOF
  say "python: built $(basename "$wheel")"
  python3 -m venv "$d/venv"
  "$d/venv/bin/pip" install --quiet --disable-pip-version-check "$wheel"
  cp "$sdk/python/examples/echo/main.py" "$sdk/python/examples/echo/main_async.py" "$d/fn/"
  same "the installed wheel (metadata, __version__, SDK_NAME)" "$(cd "$d/fn" && "$d/venv/bin/python" -c \
    'import importlib.metadata as m, sluice_sdk as s; print(m.version("sluice-sdk"), s.__version__, s.SDK_NAME)')" \
    "$version $version sluice-python/$version"
  serve "$d/fn" echo-python "$d/venv/bin/python" "$d/fn/main.py"
  # types: mypy from PyPI in a venv of its own, checking against the function's venv
  python3 -m venv "$d/mypy"
  "$d/mypy/bin/pip" install --quiet --disable-pip-version-check mypy
  (cd "$d/fn" && "$d/mypy/bin/mypy" --strict --cache-dir "$d/mypy-cache" --python-executable "$d/venv/bin/python" \
    main.py main_async.py) || fail "python: mypy --strict on the typed examples"
  # the package's own hints agree with its code (protobuf ships no stubs)
  "$d/mypy/bin/mypy" --cache-dir "$d/mypy-cache" --ignore-missing-imports "$d/src/sluice_sdk" ||
    fail "python: mypy on sluice_sdk"
}

node_package() {
  local d="$work/node"
  mkdir -p "$d/fn" "$d/types"
  local tgz
  tgz="$(cd "$sdk/node" && npm pack --silent --pack-destination "$d" | tail -1)"
  [[ "$tgz" == "sluice-sdk-$version.tgz" ]] || fail "node: npm pack made '$tgz', expected sluice-sdk-$version.tgz"
  local f listing
  listing="$(tar -tzf "$d/$tgz")"
  for f in LICENSE index.js index.mjs index.d.ts package.json proto/event.proto proto/worker.proto; do
    grep -qxF "package/$f" <<<"$listing" || fail "node: the tarball lacks $f"
  done
  say "node: packed $tgz"
  cd "$d/fn"
  npm init -y >/dev/null
  npm install --no-audit --no-fund --loglevel=error "$d/$tgz" >/dev/null
  cp "$sdk/node/examples/echo/main.js" "$sdk/node/examples/echo/main.mjs" "$sdk/node/examples/echo/main.ts" .
  same "the installed tarball (require: VERSION, SDK_NAME)" \
    "$(node -p "const s = require('sluice-sdk'); s.VERSION + ' ' + s.SDK_NAME")" "$version sluice-node/$version"
  same "the installed tarball (import)" \
    "$(node --input-type=module -e "import { VERSION } from 'sluice-sdk'; console.log(VERSION)")"
  serve "$d/fn" echo-node node "$d/fn/main.js"
  rm -rf "$d/fn/data"
  serve "$d/fn" echo-node-esm node "$d/fn/main.mjs"
  # types: tsc in a project of its own, resolving 'sluice-sdk' from the function's project
  (cd "$d/types" && npm init -y >/dev/null &&
    npm install --no-audit --no-fund --loglevel=error typescript@5 @types/node@20 >/dev/null) ||
    fail "node: installing typescript"
  # main.ts resolves the "require" condition, main.mjs (checked as JS) the "import" one
  "$d/types/node_modules/.bin/tsc" --noEmit --strict --module nodenext --moduleResolution nodenext \
    --target es2022 --typeRoots "$d/types/node_modules/@types" --types node \
    --allowJs --checkJs main.ts main.mjs || fail "node: tsc --noEmit on the examples"
  say "node: tsc --noEmit --strict passes on main.ts and main.mjs"
}

go_package() {
  local d="$work/go"
  mkdir -p "$d/module" "$d/fn/version"
  # what a module zip of sdk/go holds: its files, without build output
  tar -C "$sdk/go" --exclude=.bin -cf - . | tar -C "$d/module" -xf -
  [[ -f "$d/module/LICENSE" ]] || fail "go: the module lacks LICENSE"
  cd "$d/fn"
  cat >go.mod <<EOF
module example.com/echo

go 1.23

require sluice.dev/sdk/go v$version

replace sluice.dev/sdk/go => $d/module
EOF
  cp "$sdk/go/go.sum" go.sum
  cp "$sdk/go/examples/echo/main.go" main.go
  cat >version/main.go <<'EOF'
package main

import (
	"fmt"

	sluice "sluice.dev/sdk/go"
)

func main() { fmt.Println(sluice.Version, sluice.SDKName) }
EOF
  export GOFLAGS="-mod=mod -buildvcs=false"
  go build -o echo .
  same "the Go module (Version, SDKName)" "$(go run ./version)" "$version sluice-go/$version"
  serve "$d/fn" echo-go "$d/fn/echo"
}

for lang in "${langs[@]}"; do
  case "$lang" in
    python) python_package ;;
    node) node_package ;;
    go) go_package ;;
    *) fail "unknown SDK '$lang' (python, node or go)" ;;
  esac
done
say "passed: ${langs[*]} (version $version)"
