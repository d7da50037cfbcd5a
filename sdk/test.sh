#!/usr/bin/env bash
# Installs each SDK's dependencies from its own registry and runs its own test runner:
# pytest (Python, in sdk/python/.venv), node --test (Node.js, npm ci), go test (Go).
# Also checks that the shared fixtures in sdk/testdata and the checked-in generated
# code match schemas/, that every SDK carries sluice's version (version.sh), and that
# each SDK's artifact (wheel, npm tarball, Go module) installs alone into a fresh
# environment and runs its example under the engine (package_test.sh, at most
# PACKAGE_TEST_TIMEOUT seconds, default 900). Runs everything, then exits non-zero if
# anything failed.
# Needs: python3 (with venv), node + npm, go, protoc, and a built engine: SLUICE_BINARY,
# default build/sluice (cmake --build build --target sluice).
set -uo pipefail
sdk="$(cd "$(dirname "$0")" && pwd)"
sluice="${SLUICE_BINARY:-$sdk/../build/sluice}"
failed=()

step() {
  local name="$1"
  shift
  echo "=== sdk: $name"
  if ! "$@"; then
    echo "=== sdk: $name FAILED" >&2
    failed+=("$name")
  fi
}

fixtures() { "$sdk/testdata/gen.sh" --check; }

python_sdk() (
  set -e
  cd "$sdk/python"
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check ".[test]"
  # the installed package (not the source tree) imports and finds its schema
  (cd / && "$sdk/python/.venv/bin/python" -c 'import sluice_sdk; sluice_sdk.Frame()')
  .venv/bin/python -m pytest -q -p no:cacheprovider tests
)

node_sdk() (
  set -e
  cd "$sdk/node"
  npm ci --no-audit --no-fund --loglevel=error
  node --test test/
)

go_sdk() (
  set -e
  cd "$sdk/go"
  export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
  go mod download
  ./gen.sh --check
  go vet ./...
  go test -count=1 ./...
)

engine() {
  [[ -x "$sluice" ]] && return 0
  echo "no sluice binary at $sluice: build it (cmake --build build --target sluice) or set SLUICE_BINARY" >&2
  return 1
}
version() { engine && "$sdk/version.sh" "$sluice"; }
packages() { engine && timeout "${PACKAGE_TEST_TIMEOUT:-900}" "$sdk/package_test.sh" "$sluice"; }

step fixtures fixtures
step version version
step python python_sdk
step node node_sdk
step go go_sdk
step packages packages

if ((${#failed[@]})); then
  echo "sdk tests FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "sdk tests passed (python, node, go, version, packages)"
