#!/usr/bin/env bash
# The pipeline on a GPU machine that reaches no package registry, in two device calls:
#   call 1 (carry .gpu/weights.1):                       bash scripts/gpu_run.sh --receive
#   call 2 (carry .gpu/weights.2 .gpu/weights.json .gpu/wheels):
#                                                         bash scripts/gpu_run.sh OUT [gpu_run.py args]
# Here, `python benchmarks/gpu_pack.py pack` builds .gpu/. Call 2 installs the wheels, rebuilds
# the Inception weights (SHA-256 checked), makes the copy a git repository (DVC needs one),
# and runs benchmarks/gpu_run.py: every stage timed, nvidia-smi sampled, OUT/gpu_run.json.
# Without .gpu/ (a machine with the packages, or a rehearsal here) it runs with what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ "${1:-}" = "--receive" ]; then
    exec "$python" benchmarks/gpu_pack.py unpack  # keeps call 1's part until call 2
fi
out=${1:?usage: scripts/gpu_run.sh OUT_DIR [--preset NAME] [--set KEY=VALUE ...] | --receive}
shift
if [ -d .gpu/wheels ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .gpu/wheels/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PATH="/tmp/site/bin:$PATH"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -f .gpu/weights.2 ]; then
    "$python" benchmarks/gpu_pack.py unpack
fi
if [ ! -d .git ]; then  # the device machine gets the working tree without its history
    git init -q && git add -A && git -c user.name=ganlab -c user.email=ganlab@localhost \
        commit -qm "the working tree, for DVC"
fi
nvidia-smi || true
"$python" benchmarks/gpu_run.py --out "$out" "$@"
cp -f metrics/eval.json metrics/train.json reports/eval_info.json "$out/" 2>/dev/null || true
