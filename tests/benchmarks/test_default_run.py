"""benchmarks/default_run.py: the row a run of the defaults gives, from the pipeline's files."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import default_run  # benchmarks/ is a folder of scripts, not a package

EVAL = {"fid": 26.92556, "kid": 0.014666, "inception_precision": 0.4658, "inception_recall": 0.4}


def _outputs(root, train: dict, info: dict | None) -> None:
    (root / "metrics").mkdir()
    (root / "metrics/eval.json").write_text(json.dumps(EVAL))
    (root / "metrics/train.json").write_text(json.dumps(train))
    if info is not None:
        (root / "reports").mkdir()
        (root / "reports/train_info.json").write_text(json.dumps(info))


def test_the_row_reads_scores_and_the_training_time_from_the_info_file(tmp_path):
    _outputs(tmp_path, {"steps": 14055}, {"train_seconds": 492.3})
    row = default_run.figures(tmp_path, wall_minutes=19.4)
    assert row == {
        "fid": 26.93,
        "kid": 0.0147,
        "precision": 0.4658,
        "recall": 0.4,
        "steps": 14055,
        "train_minutes": 8.2,
        "wall_minutes": 19.4,
    }


def test_the_row_names_the_precision_the_run_trained_in_when_its_info_file_does(tmp_path):
    _outputs(tmp_path, {"steps": 14055}, {"train_seconds": 492.3, "precision": "bf16"})
    assert default_run.figures(tmp_path, wall_minutes=19.4)["train_precision"] == "bf16"


def test_outputs_from_before_the_info_file_still_give_their_training_time(tmp_path):
    _outputs(tmp_path, {"steps": 14055, "train_seconds": 600.0}, None)
    assert default_run.figures(tmp_path, wall_minutes=20.0)["train_minutes"] == 10.0


def test_stage_seconds_keep_the_long_stages_and_sum_the_rest():
    seconds = dict.fromkeys(default_run.STAGES, 10.0) | {"train": 500.4, "fid_stats": 240.6}
    row = default_run.stage_columns(seconds)
    assert row["train_s"] == 500 and row["fid_stats_s"] == 241 and row["evaluate_s"] == 10
    assert row["rest_s"] == 30  # check_params, download, render
    assert row["wall_minutes"] == pytest.approx(round((500.4 + 240.6 + 50) / 60, 1))
