#!/usr/bin/env bash
# Install everything ganlab needs into ./.venv: Debian's Fashion-MNIST, PyTorch, the package.
# Set GANLAB_BROWSER=1 to also install Debian's Chromium for the MLflow UI browser test, and
# GANLAB_TEAM=1 for PostgreSQL and psycopg (the team MLflow server test); CI sets both.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=()
[ -d /usr/share/datasets/fashion-mnist ] || PACKAGES+=(dataset-fashion-mnist)
if [ "${GANLAB_BROWSER:-0}" = "1" ] && ! command -v chromium >/dev/null; then PACKAGES+=(chromium); fi
if [ "${GANLAB_TEAM:-0}" = "1" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  PACKAGES+=(postgresql)
fi
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
EXTRAS="dev"
if [ "${GANLAB_TEAM:-0}" = "1" ]; then EXTRAS="dev,team"; fi
# The tested exact set (constraints.txt) under pyproject.toml's ranges.
$PIP install -q -c constraints.txt -e ".[$EXTRAS]"
bash scripts/offline_plots.sh
echo "installed; activate with: source .venv/bin/activate"
