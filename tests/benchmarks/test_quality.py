"""benchmarks/quality.py scores snapshots with the evaluate stage's code: on dvc.yaml's files."""

from __future__ import annotations

import shlex
import sys

import yaml

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import quality  # benchmarks/ is a folder of scripts, not a package


def test_the_snapshots_are_scored_on_the_files_the_evaluate_stage_reads():
    command = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["evaluate"]["cmd"]
    words = shlex.split(command)
    stage_args = {
        words[i][2:].replace("-", "_"): words[i + 1]
        for i in range(len(words) - 1)
        if words[i].startswith("--")
    }
    inputs = vars(quality.stage_inputs(REPO, REPO / "models/snapshots/minute_0010.00.pt"))
    for name, path in inputs.items():
        if name != "generator":
            assert path == REPO / stage_args[name], name
