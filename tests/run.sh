#!/usr/bin/env bash
# Set up (or reuse) the virtualenv in .venv, install tongues with its test extras, run the test suite.
# This is the README's test command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch is pinned in pyproject.toml, so pip takes the local CPU wheel and never a CUDA build.
# The flax and tf extras let the suite check the TensorFlow and Flax classes too.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,flax,tf]'
status=0
.venv/bin/python -m pytest "$@" || status=$?
# pytest exits 5 when it collected nothing: that is a failure of the set-up, not a pass.
exit "$status"
