# Sourced by the test scripts (tests/api, tests/interop): what each would repeat.

# make_venv VENV REQUIREMENTS: the venv VENV with the pinned REQUIREMENTS, made once
# and again only when the requirements file changed (a copy is kept in VENV).
make_venv() {
  local venv=$1 requirements=$2
  if [[ -x $venv/bin/python ]] && cmp -s "$requirements" "$venv/requirements.txt"; then return; fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
}

# start_engine SLUICE CONFIG LOG PORT SECONDS: runs `SLUICE run -c CONFIG` in the
# background (its pid in $engine_pid, output in LOG) and waits until
# http://127.0.0.1:PORT/healthz answers; exits 1 with the log when sluice exits or
# SECONDS pass first.
start_engine() {
  local sluice=$1 config=$2 log=$3 port=$4 deadline=$((SECONDS + $5))
  "$sluice" run -c "$config" > "$log" 2>&1 &
  engine_pid=$!
  until curl -fs "http://127.0.0.1:$port/healthz" > /dev/null 2>&1; do
    kill -0 "$engine_pid" 2>/dev/null || { cat "$log"; echo "sluice exited"; exit 1; }
    ((SECONDS < deadline)) || { cat "$log"; echo "sluice not ready within $5 s"; exit 1; }
    sleep 0.1
  done
}
