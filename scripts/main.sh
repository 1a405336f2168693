#!/usr/bin/env bash
# Set up the environment, check the raw data and run the whole StarGAN pipeline with DVC.
# Usage: bash scripts/main.sh           paper settings on the datasets under data/raw (see README, "Data")
#        bash scripts/main.sh --quick   the same stages on the small real samples in ../shared/data, on CPU
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate

if [[ "${1:-}" == "--quick" ]]; then
  mapfile -t sets < <(python scripts/profile_flags.py profiles/quick.yaml --stargan)
  mapfile -t dvc_sets < <(python scripts/profile_flags.py profiles/quick.yaml --dvc)
  stargan check-data "${sets[@]}"
  # The quick run is a DVC experiment (`dvc exp show` lists it). Its outputs stay in the workspace, and
  # params.yaml returns to its previous content afterwards, so the next `dvc repro` uses those settings.
  cp params.yaml .params.yaml.before-quick
  trap 'mv -f .params.yaml.before-quick params.yaml' EXIT
  dvc exp run "${dvc_sets[@]}"
elif [[ -z "${1:-}" ]]; then
  stargan check-data
  dvc repro
else
  echo "usage: bash scripts/main.sh [--quick]" >&2
  exit 2
fi
echo "evaluation report: reports/eval.md; metrics: metrics/eval.json and runs/*/metrics.json (dvc metrics show)"
echo "compare runs in the MLflow UI: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db"
