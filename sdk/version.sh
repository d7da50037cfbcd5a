#!/usr/bin/env bash
# One version: the top CMakeLists.txt's `project(sluice VERSION x.y.z)` is the source.
# `sluice --version` prints it from core/version.h (configure_file); each SDK carries
# the same in one place, which this script checks:
#   Python  sdk/python/sluice_sdk/_version.py  (__version__; pyproject.toml reads it)
#   Node    sdk/node/package.json              ("version"; lib/worker.js reads it; and
#                                              package-lock.json's copies of it)
#   Go      sdk/go/version.go                  (const Version; Go modules have no version field)
# Usage: sdk/version.sh [SLUICE_BINARY]   also checks that `SLUICE_BINARY --version`
# prints it. Prints the version; exits 1 naming every file that disagrees.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

want=$(sed -nE 's/^project\(sluice VERSION ([0-9]+\.[0-9]+\.[0-9]+)[ )].*/\1/p' "$root/CMakeLists.txt")
if [[ -z "$want" ]]; then
  echo "version.sh: no 'project(sluice VERSION x.y.z ...)' in CMakeLists.txt" >&2
  exit 1
fi

bad=0
check() {  # check WHAT FOUND
  if [[ "$2" != "$want" ]]; then
    echo "version.sh: $1 says '${2}', CMakeLists.txt project() says '$want'" >&2
    bad=1
  fi
}
check sdk/python/sluice_sdk/_version.py \
  "$(sed -nE 's/^__version__ = "([^"]*)"$/\1/p' "$root/sdk/python/sluice_sdk/_version.py")"
check sdk/node/package.json \
  "$(sed -nE 's/^  "version": "([^"]*)",?$/\1/p' "$root/sdk/node/package.json")"
check sdk/node/package-lock.json \
  "$(python3 -c 'import json, sys; l = json.load(open(sys.argv[1])); v = {l["version"], l["packages"][""]["version"]}; print(v.pop() if len(v) == 1 else " and ".join(sorted(v)))' \
      "$root/sdk/node/package-lock.json")"
check sdk/go/version.go \
  "$(sed -nE 's/^const Version = "([^"]*)"$/\1/p' "$root/sdk/go/version.go")"
if [[ $# -ge 1 ]]; then
  got=$("$1" --version 2>&1)
  check "'$1 --version'" "${got#sluice }"
fi
((bad)) && exit 1
echo "$want"
