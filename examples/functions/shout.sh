#!/bin/sh
# An exec function: the event's data arrives on stdin, the result goes to stdout,
# a non-zero exit is a failure (retried, then dead-lettered).
data=$(cat)
case "$data" in
  *fail*) echo "refusing to shout '$data'" >&2; exit 1 ;;
esac
printf '%s!' "$data" | tr '[:lower:]' '[:upper:]'
