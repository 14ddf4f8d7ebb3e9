#!/usr/bin/env bash
# Install into .venv and run the main job: index the bundled demo corpus (branchwise's own docs)
# with the embedded default models, then answer a question with citations and the tree path.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh embedded
exec .venv/bin/branchwise demo "$@"
