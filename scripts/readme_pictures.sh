#!/usr/bin/env bash
# Rebuild the README's pictures from this repository's own runs: the final pictures of the
# last `dvc repro`, a latent interpolation, the latest pix2pix and
# CycleGAN translation grids, and a screenshot of
# MLflow's comparison page for the two best runs (Playwright driving Debian's chromium).
#   bash scripts/readme_pictures.sh          # after dvc repro and one dvc exp run
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=docs/images
mkdir -p "$OUT"

cp reports/figures/{samples.png,progress.png,progress.gif,losses.png,d_outputs.png,quality.png} "$OUT"/
ganlab interpolate --checkpoint models/generator_best.pt --seeds 0 1 2 3 4 --steps 10 \
    --method slerp --out "$OUT/interpolation.png" --gif "$OUT/interpolation.gif"
python - <<'EOF'
"""The translation grids of the latest finished pix2pix and CycleGAN runs, from MLflow."""
import shutil

import mlflow

from ganlab import tracking

tracking.connect()
runs = tracking.runs_frame()
for model in ("pix2pix", "cyclegan"):
    if "params.model" not in runs:
        break
    done = runs[
        (runs["params.model"] == model) & (runs["status"] == "FINISHED") & runs["metrics.fid"].notna()
    ]
    if done.empty:
        continue
    run_id = done.sort_values("start_time")["run_id"].iloc[-1]
    grid = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="render/translations.png"
    )
    shutil.copy(grid, f"docs/images/{model}_translations.png")
EOF

CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$CHROMIUM" ]; then
  echo "chromium is not installed: no MLflow screenshot" >&2
  exit 0
fi
PORT=5077
mlflow ui --host 127.0.0.1 --port "$PORT" --backend-store-uri "sqlite:///$PWD/mlflow.db" \
    >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 0.5
done
RUNS="$(python - <<'EOF'
"""The two latest finished runs with a FID: the last `dvc repro` and the experiment after it."""
from ganlab import tracking

tracking.connect()
runs = tracking.runs_frame()
done = runs[(runs["status"] == "FINISHED") & runs["metrics.fid"].notna()]
print(" ".join(done.sort_values("start_time")["run_id"].tail(2)))
EOF
)"
# shellcheck disable=SC2086  # two run ids
python scripts/mlflow_screenshot.py --port "$PORT" --chromium "$CHROMIUM" \
    --out "$OUT/mlflow_compare.png" $RUNS
echo "pictures in $OUT"
