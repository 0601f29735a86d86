"""benchmarks/model_zoo.py: which presets it trains, and the rows it reads back from MLflow."""

from __future__ import annotations

import sys

import mlflow
import pandas as pd

from ganlab import tracking
from ganlab.presets import PAPERS, PRESETS
from ganlab.tracking import write_run_id
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import model_zoo  # benchmarks/ is a folder of scripts, not a package


def test_the_zoo_trains_every_paper_preset_and_only_on_fashion_mnist():
    """`python benchmarks/model_zoo.py` runs offline: no preset that needs MNIST, SVHN or CelebA."""
    assert set(PAPERS) <= set(model_zoo.ZOO)
    assert "fashion_mlp_lab" in model_zoo.ZOO
    assert all(
        PRESETS[name].get("dataset", "fashion_mnist") == "fashion_mnist" for name in model_zoo.ZOO
    )


def test_a_row_counts_generator_updates_not_critic_steps(monkeypatch):
    """WGAN's critic takes five steps per G update: the table must not credit G with them."""
    run = {
        "tags.mlflow.runName": "zoo-wgan-gp",
        "status": "FINISHED",
        "start_time": pd.Timestamp("2026-12-02 21:00:00"),
        "end_time": pd.Timestamp("2026-12-02 21:08:24"),
        "metrics.fid": 147.7,
        "metrics.steps": 6495.0,
        "metrics.images_seen": 415680.0,
        "metrics.train_seconds": 300.1,
        "metrics.n_real": 5000.0,
        "metrics.n_fake": 2000.0,
        "metrics.classifier_fid": 526.7,
        "metrics.classes_covered": 10.0,
    }
    monkeypatch.setattr(tracking, "runs_frame", lambda: pd.DataFrame([run]))
    (row,) = model_zoo.table_from_mlflow(REPO, ["wgan_gp", "sngan"])  # sngan: no run yet
    assert row["preset"] == "wgan_gp" and row["g_updates"] == 6495 // 5 == 1299
    assert row["images_seen"] == 415680 and row["wall_s"] == 504


def test_time_to_quality_is_the_first_snapshot_at_or_under_the_target():
    """The board answers "how long until FID 30": the first minute it got there, not the best."""
    curve = [
        {"minutes": 6.0, "fid": 26.0},
        {"minutes": 2.0, "fid": 80.0},
        {"minutes": 4.0, "fid": 29.5},
        {"minutes": 8.0, "fid": 31.0},
    ]
    assert model_zoo.minutes_to_reach(curve, 30.0) == 4.0
    assert model_zoo.minutes_to_reach(curve, 30.0) != 6.0  # the lowest FID is later
    assert model_zoo.minutes_to_reach(curve, 20.0) is None


def test_the_board_tells_reached_from_never_reached_from_never_scored(monkeypatch):
    base = {
        "status": "FINISHED",
        "start_time": pd.Timestamp("2026-12-03 06:00:00"),
        "end_time": pd.Timestamp("2026-12-03 06:20:00"),
        "metrics.fid": 28.0,
        "metrics.steps": 11000.0,
        "metrics.images_seen": 704000.0,
        "metrics.train_seconds": 600.2,
        "metrics.n_real": 5000.0,
        "metrics.n_fake": 2000.0,
        "metrics.classifier_fid": 40.0,
        "metrics.classes_covered": 10.0,
    }
    runs = pd.DataFrame(
        [
            base
            | {
                "tags.mlflow.runName": "zoo-cgan-projection",
                "metrics.snapshot/fid": 28.0,
                "metrics.minutes_to_fid_30": 8.0,
            },
            base | {"tags.mlflow.runName": "zoo-sngan", "metrics.snapshot/fid": 41.0},
            base | {"tags.mlflow.runName": "zoo-lsgan"},
        ]
    )
    monkeypatch.setattr(tracking, "runs_frame", lambda: runs)
    rows = model_zoo.table_from_mlflow(REPO, ["cgan_projection", "sngan", "lsgan"], 30.0)
    cells = {row["preset"]: model_zoo.reach_cell(row) for row in rows}
    assert cells == {"cgan_projection": "8.0", "sngan": "not in 10", "lsgan": "-"}


def test_the_curve_lands_in_the_finished_run_the_experiment_made(tmp_path, monkeypatch):
    """Scored after `dvc exp run` ended: the run keeps its status and times (the table's wall
    time), and gains the curve by step and the minutes to the target."""
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_id = tracking.new_run({"lr": 0.1}, "zoo-sngan")
    with tracking.open_run(run_id):
        tracking.log_metrics({"fid": 29.0})
    ended = mlflow.get_run(run_id).info.end_time
    write_run_id(tmp_path / "models/train_run.json", run_id)
    curve = [
        {"minutes": 2.0, "step": 2400, "fid": 61.0},
        {"minutes": 4.0, "step": 4800, "fid": 29.0},
    ]

    model_zoo.log_curve(tmp_path, curve, 30.0)

    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.end_time == ended
    assert run.data.metrics["minutes_to_fid_30"] == 4.0
    history = mlflow.MlflowClient().get_metric_history(run_id, "snapshot/fid")
    assert [(m.step, m.value) for m in history] == [(2400, 61.0), (4800, 29.0)]
