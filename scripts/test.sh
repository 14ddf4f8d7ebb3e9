#!/usr/bin/env bash
# Install into .venv (with test extras and Debian Chromium for the browser tests) and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh test
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will be skipped" >&2
  else
    echo "warning: chromium not found and cannot apt-get install it; browser tests will be skipped" >&2
  fi
fi
# lint (pyproject.toml [tool.ruff]): unused names, undefined names, likely bugs
.venv/bin/ruff check --quiet branchwise tests benchmarks scripts notebooks
# the import layers (pyproject.toml [tool.importlinter]): no cycles, no import from a lower layer up
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -q "$@"
