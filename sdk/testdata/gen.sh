#!/usr/bin/env bash
# Regenerates the shared frame fixtures: frames/NAME.txtpb (protobuf text format of one
# sluice.v1.Frame) -> NAME.bin (4-byte big-endian length + the frame, as on the wire),
# with `protoc --encode` from schemas/worker.proto; plus the hand-made bad_*.bin frames.
#   gen.sh          write the .bin files next to this script
#   gen.sh --check  regenerate into a temporary dir and fail if a checked-in file differs
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
schemas="$here/../../schemas"
out="$here"
if [[ "${1:-}" == "--check" ]]; then
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
for src in "$here"/frames/*.txtpb; do
  name="$(basename "$src" .txtpb)"
  body="$out/$name.body"
  protoc -I "$schemas" --encode=sluice.v1.Frame worker.proto <"$src" >"$body"
  { be32 "$(stat -c %s "$body")"; cat "$body"; } >"$out/$name.bin"
  rm -f "$body"
done
# A length above the 64 MiB limit (64 MiB + 1), with no body.
be32 $((64 * 1024 * 1024 + 1)) >"$out/bad_oversize.bin"
# Three bytes that do not parse as a Frame (an unterminated varint tag).
{ be32 3; printf '\xff\xff\xff'; } >"$out/bad_garbage.bin"
# A frame that parses but sets no kind (empty body).
be32 0 >"$out/bad_no_kind.bin"
# A stream that ends inside a frame: the first 10 bytes of invoke.bin.
head -c 10 "$out/invoke.bin" >"$out/bad_truncated.bin"
if [[ "$out" != "$here" ]]; then
  status=0
  for f in "$out"/*.bin; do
    name="$(basename "$f")"
    if ! cmp -s "$f" "$here/$name"; then
      echo "sdk/testdata/$name is stale or missing: run sdk/testdata/gen.sh" >&2
      status=1
    fi
  done
  for f in "$here"/*.bin; do
    [[ -e "$out/$(basename "$f")" ]] || { echo "sdk/testdata/$(basename "$f") has no source" >&2; status=1; }
  done
  exit $status
fi
