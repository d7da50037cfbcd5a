#!/bin/sh
# Runs `promtool ARGS...` for the deploy.promtool.* tests. Without promtool (Debian
# package prometheus, which ./sluice.sh installs) the test is skipped, not failed:
# exit 77 is the tests' SKIP_RETURN_CODE.
if ! command -v promtool >/dev/null 2>&1; then
  echo "SKIPPED: promtool not found on PATH; install the Debian package 'prometheus'" >&2
  exit 77
fi
exec promtool "$@"
