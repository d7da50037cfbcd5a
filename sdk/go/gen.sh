#!/usr/bin/env bash
# Regenerates sluicepb/*.pb.go from schemas/ with protoc and protoc-gen-go (installed
# from the Go module proxy into .bin/, at the version go.mod requires).
#   gen.sh          rewrite sluicepb/
#   gen.sh --check  fail if the checked-in sluicepb/ differs from a fresh generation
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
schemas="$here/../../schemas"
cd "$here"
version="$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"
if [[ ! -x .bin/protoc-gen-go ]] || [[ "$(.bin/protoc-gen-go --version)" != "protoc-gen-go $version" ]]; then
  GOBIN="$here/.bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$version"
fi
out="$here/sluicepb"
if [[ "${1:-}" == "--check" ]]; then
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi
pkg=sluice.dev/sdk/go/sluicepb
PATH="$here/.bin:$PATH" protoc -I "$schemas" --go_out="$out" --go_opt=paths=source_relative \
  --go_opt="Mevent.proto=$pkg;sluicepb" --go_opt="Mworker.proto=$pkg;sluicepb" \
  --go_opt="Mdead_letter.proto=$pkg;sluicepb" event.proto worker.proto
if [[ "$out" != "$here/sluicepb" ]]; then
  if ! diff -r "$out" "$here/sluicepb" >/dev/null; then
    echo "sdk/go/sluicepb is stale: run sdk/go/gen.sh" >&2
    diff -r "$out" "$here/sluicepb" | head -20 >&2
    exit 1
  fi
fi
