#!/usr/bin/env bash
# Set up (or reuse) the virtualenv in .venv, install tongues with its test extras, run the test suite.
# This is the README's test command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# The serve playground test drives Debian's headless Chromium; install it once where we may (root, apt).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# tongues.native (the C++ decode kernels) is compiled on first use; the suite checks it, so it needs g++.
if ! command -v c++ >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
fi
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
