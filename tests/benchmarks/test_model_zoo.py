"""benchmarks/model_zoo.py: which presets it trains, and the rows it reads back from MLflow."""

from __future__ import annotations

import sys

import pandas as pd

from ganlab import tracking
from ganlab.presets import PAPERS, PRESETS
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
