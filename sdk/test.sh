#!/usr/bin/env bash
# Installs each SDK's dependencies from its own registry and runs its own test runner:
# pytest (Python, in sdk/python/.venv), node --test (Node.js, npm ci), go test (Go).
# Also checks that the shared fixtures in sdk/testdata and the checked-in generated
# code match schemas/. Runs everything, then exits non-zero if anything failed.
# Needs: python3 (with venv), node + npm, go, protoc.
set -uo pipefail
sdk="$(cd "$(dirname "$0")" && pwd)"
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

step fixtures fixtures
step python python_sdk
step node node_sdk
step go go_sdk

if ((${#failed[@]})); then
  echo "sdk tests FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "sdk tests passed (python, node, go)"
