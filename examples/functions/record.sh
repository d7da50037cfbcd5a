#!/bin/sh
# Appends each event (with its CloudEvents id, passed as $CE_ID) to data/shouted.log.
mkdir -p data
printf '%s %s\n' "$CE_ID" "$(cat)" >> data/shouted.log
