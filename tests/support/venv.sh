# Sourced by the test scripts that need PyPI packages: make_venv VENV REQUIREMENTS
# creates the venv VENV with the pinned REQUIREMENTS once, and again only when the
# requirements file changed (a copy is kept in VENV).
make_venv() {
  local venv=$1 requirements=$2
  if [[ -x $venv/bin/python ]] && cmp -s "$requirements" "$venv/requirements.txt"; then return; fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
}
