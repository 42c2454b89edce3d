#!/usr/bin/env bash
# Runs the test suite again on the newest Python the Flex Consumption plan offers (3.13), in a
# virtualenv of its own (.venv-3.13), when this machine has that interpreter (on PATH, or under
# pyenv). Without it, says so and leaves the run to the main suite (Python 3.11, what infra/ deploys).
set -euo pipefail
version=3.13
venv=.venv-$version
python=""
for candidate in "python$version" "$(pyenv root 2>/dev/null)"/versions/$version.*/bin/python$version; do
  if [ -n "$candidate" ] && "$candidate" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "NOTE: no Python $version on this machine: the suite ran on $(.venv/bin/python -V) only." >&2
  exit 0
fi
if [ ! -f "$venv/.installed" ] || [ requirements.txt -nt "$venv/.installed" ] || [ requirements-dev.txt -nt "$venv/.installed" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  touch "$venv/.installed"
fi
echo "Running the suite on $("$venv/bin/python" -V)"
"$venv/bin/python" -m pytest -q
