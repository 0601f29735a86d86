"""benchmarks/levers.py: every lever is a valid change of the recipe, each setting and seed is
scored at each kept step, the seeds' mean is the table's, and a reference of the wrong size
is refused before any training."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.metrics import fid
from ganlab.training.params import from_mapping
from tests.conftest import REPO, tiny_params

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_sweep
import levers  # benchmarks/ is a folder of scripts, not a package

ARGS = argparse.Namespace(
    preset="fashion_30min_fp32", only=None, seeds=[42, 43], every=10000, max_steps=30000,
    seconds=3600,
)  # fmt: skip


def test_every_lever_and_seed_is_a_valid_run_of_the_recipe():
    jobs = levers.jobs_for(ARGS)
    assert [(name, seed) for name, seed, _ in jobs[:2]] == [("recipe", 42), ("recipe", 43)]
    assert len(jobs) == 2 * len(levers.LEVERS)
    for _, seed, params in jobs:
        config = from_mapping(params)
        assert config.seed == seed and config.train.max_steps == 30000
        assert config.train.snapshot_every == 10000 and config.ngf == 32  # the recipe underneath
    combined = from_mapping(jobs[-1][2])
    assert combined.g.self_modulation and combined.g.topk == 0.5
    assert combined.regularize.progressive_bits == 2 and combined.regularize.r1_every == 16


def test_each_setting_and_seed_is_scored_at_each_kept_step(tiny_root: Path, tmp_path, monkeypatch):
    """Tiny runs in-process; Inception stood in for by pixel statistics (the real network is the
    evaluate stage's, tested there): FID per setting, seed and step, the seeds' mean."""
    train = {"max_steps": 4, "snapshot_every": 2}
    jobs = [
        (name, seed, tiny_params(dataset="tiny", seed=seed, lr=0.01, train=train, **change))
        for name, change in (("recipe", {}), ("self-modulation", {"g": {"self_modulation": True}}))
        for seed in (1, 2)
    ]
    for index, (_, _, params) in enumerate(jobs):
        gpu_sweep.train_one(str(index), params, tiny_root, "cpu", "fp32", tmp_path)
    real = np.random.default_rng(0).normal(size=(16, 4))
    np.savez(tmp_path / "stats.npz", mu=real.mean(0), sigma=np.cov(real, rowvar=False))
    np.save(tmp_path / "features.npy", real)
    monkeypatch.setattr(levers, "inception_network", lambda settings, device: None)
    monkeypatch.setattr(levers, "inception_features", pixel_features)
    args = argparse.Namespace(
        device="cpu", data=tiny_root, stats=tmp_path / "stats.npz",
        features=tmp_path / "features.npy", n_fake=16, fid_batch=8, fake_seed=3,
    )  # fmt: skip
    rows = levers.score(jobs, args, tmp_path)
    assert [(r["setting"], r["seed"], r["step"]) for r in rows] == [
        (name, seed, step)
        for name in ("recipe", "self-modulation")
        for seed in (1, 2)
        for step in (2, 4)
    ]
    assert len({r["fid"] for r in rows}) == len(rows)  # every generator scored on its own
    assert all(r["fid"] > 0 and "kid" in r for r in rows)
    table = levers.summary(rows, [2, 4])
    recipe_at_4 = [r["fid"] for r in rows if r["setting"] == "recipe" and r["step"] == 4]
    assert table[0]["fid_4"] == pytest.approx(np.mean(recipe_at_4), abs=0.006)
    assert table[0]["seeds_4"] == " / ".join(f"{v:.2f}" for v in recipe_at_4)


def pixel_features(images, network, settings, device, desc):
    """4 features of each image: its mean and the means of 3 bands of rows."""
    x = images.float().flatten(2).mean(1)
    bands = [x[:, i : i + 260].mean(1) for i in (0, 260, 520)]
    return torch.stack([x.mean(1), *bands], dim=1).double().numpy(), None


def test_a_reference_of_another_size_is_refused(tmp_path):
    real = np.zeros((5000, 4))
    np.savez(tmp_path / "stats.npz", mu=real.mean(0), sigma=np.eye(4))
    np.save(tmp_path / "features.npy", real)
    assert fid.load_features(tmp_path / "features.npy").shape == (5000, 4)
    with pytest.raises(SystemExit, match=r"5,000 images, not 10,000: run `dvc repro fid_stats"):
        levers.reference(tmp_path / "stats.npz", tmp_path / "features.npy", 10000)
