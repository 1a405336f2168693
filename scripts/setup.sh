#!/usr/bin/env bash
# Create .venv in the repository root and install the project with its pinned dependencies and test tools.
# Usage: bash scripts/setup.sh            (idempotent: a second run only checks the installation)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch and torchvision are pinned in pyproject.toml; on Linux PyPI serves the CUDA build, which also runs on CPU.
.venv/bin/python -m pip install --quiet -e ".[test]"
.venv/bin/stargan --help >/dev/null
echo "setup complete: .venv/bin/stargan is ready"
