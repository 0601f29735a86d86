#!/usr/bin/env bash
# Install everything ganlab and its tests need: Debian's Fashion-MNIST, npm (offline plots),
# Chromium (the browser tests) and PostgreSQL (the team MLflow server test), then ./.venv with
# PyTorch and the package. The test suite fails on a skipped test, so nothing here is optional.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=()
[ -d /usr/share/datasets/fashion-mnist ] || PACKAGES+=(dataset-fashion-mnist)
command -v npm >/dev/null || PACKAGES+=(npm)  # offline `dvc plots show` (scripts/offline_plots.sh)
command -v chromium >/dev/null || PACKAGES+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || PACKAGES+=(postgresql)
if [ ${#PACKAGES[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${PACKAGES[@]}"
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip"
# torch first, at the tested version: a bare `torch` requirement could pull a newer release.
$PIP install -q -c constraints.txt "torch" "torchvision"
# The tested exact set (constraints.txt) under pyproject.toml's ranges.
$PIP install -q -c constraints.txt -e ".[dev,team]"
bash scripts/offline_plots.sh
echo "installed; activate with: source .venv/bin/activate"
