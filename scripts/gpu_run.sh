#!/usr/bin/env bash
# The pipeline on a GPU machine that reaches no package registry and no dataset mirror.
# Here: `python benchmarks/gpu_pack.py pack` makes .gpu/1, .gpu/2, ... (one parcel a call).
# There, one call per parcel, back to back (the machine keeps /tmp between calls while warm):
#   carry .gpu/1:      bash scripts/gpu_run.sh --receive
#   ...
#   carry .gpu/N:      bash scripts/gpu_run.sh OUT [--preset NAME] [--set KEY=VALUE ...] [--commit C]
#   then, still warm:  bash scripts/gpu_run.sh OUT2 --cpu-check [--commit C]     (the defaults)
# The last call checks every file, installs the wheels, rebuilds the Inception weights (SHA-256
# checked), puts the data where download.local_dirs looks, makes the copy a git repository (DVC
# needs one) and runs benchmarks/gpu_run.py: every stage timed, nvidia-smi sampled, OUT/gpu_run.json.
# Without parcels (a machine that has the packages, or a rehearsal) it runs with what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
store=/tmp/ganlab-gpu
for parcel in .gpu/[0-9]*; do
    [ -d "$parcel" ] && "$python" benchmarks/gpu_pack.py receive "$parcel"
done
if [ "${1:-}" = "--receive" ]; then
    exit 0
fi
out=${1:?usage: scripts/gpu_run.sh OUT_DIR [--preset NAME] [--set KEY=VALUE ...] | --receive}
shift
if [ -f "$store/manifest.json" ]; then
    "$python" benchmarks/gpu_pack.py install
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$store"/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PATH="/tmp/site/bin:$PATH"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ ! -d .git ]; then  # the device machine gets the working tree without its history
    git init -q && git add -A && git -c user.name=ganlab -c user.email=ganlab@localhost \
        commit -qm "the working tree, for DVC"
fi
nvidia-smi || true
mkdir -p "$out"
"$python" benchmarks/gpu_run.py --out "$out" "$@" 2>&1 | tee "$out/gpu_run.log"
