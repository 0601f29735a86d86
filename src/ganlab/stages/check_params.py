"""Stage `check_params`: every param checked against the schema and every registry, first.

The data stages (download, fid_stats, classifier) check only the keys they read, so that
editing a loss or a model leaves them up to date. This stage checks them all, and download
depends on its record, so a bad value anywhere stops `dvc repro` before any long work.
The record is the same for every valid params.yaml: its change never reruns a stage.
"""

from __future__ import annotations

from pathlib import Path

from ganlab.io import write_json
from ganlab.stages import parser, run_stage
from ganlab.training import params


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--out", type=Path, required=True, help="record of the check")
    args = arguments.parse_args()
    params.load(args.params)
    write_json(args.out, {"params": "valid"})


if __name__ == "__main__":
    run_stage(main)
