"""benchmarks/levers.py: every lever is a valid change of the recipe, a first seed of every
setting runs before any second, each kept step of a run is scored on its own, and a setting and
seed already recorded under the same protocol is not run again."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.config import with_overrides
from ganlab.presets import flat_overrides
from ganlab.training.params import from_mapping
from tests.conftest import REPO, tiny_params

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_sweep
import levers  # benchmarks/ is a folder of scripts, not a package

ARGS = argparse.Namespace(
    preset="fashion_30min_fp32", only=None, seeds=[42, 43], every=10000, max_steps=30000,
    seconds=3600, n_fake=10000, n_real=10000, fake_seed=43, precision="fp32",
)  # fmt: skip


def test_every_lever_and_seed_is_a_valid_run_of_the_recipe_first_seeds_first():
    jobs = levers.jobs_for(ARGS)
    assert [(name, seed) for name, seed, _ in jobs[:2]] == [("recipe", 42), ("self-modulation", 42)]
    assert [seed for _, seed, _ in jobs] == [42] * len(levers.LEVERS) + [43] * len(levers.LEVERS)
    for _, seed, params in jobs:
        config = from_mapping(params)
        assert config.seed == seed and config.train.max_steps == 30000
        assert config.train.snapshot_every == 10000 and config.ngf == 32  # the recipe underneath
    # the recipe the levers were measured against, not the preset that since took one of them in
    assert from_mapping(with_overrides({}, flat_overrides(ARGS.preset))).g.self_modulation
    assert not from_mapping(jobs[0][2]).g.self_modulation
    combined = from_mapping(jobs[len(levers.LEVERS) - 1][2])
    assert combined.g.self_modulation and combined.g.topk == 0.5
    assert combined.regularize.progressive_bits == 0 and combined.regularize.r1_weight == 0
    assert len({levers.run_file(params) for _, _, params in jobs}) == len(jobs)


def test_what_is_recorded_under_the_same_protocol_is_not_run_again():
    jobs = levers.jobs_for(ARGS)
    terms = levers.protocol(ARGS)
    table = {
        "rows": [
            {"setting": "recipe", "seed": 42, "step": 30000, "protocol": terms},
            {"setting": "top-k", "seed": 43, "step": 30000, "protocol": terms},
            {"setting": "self-modulation", "seed": 42, "protocol": terms | {"max_steps": 9}},
        ]
    }
    done = levers.recorded(table, terms)
    assert len(done) == 2  # the shorter run is another protocol
    left = [(name, seed) for name, seed, _ in levers.remaining(jobs, done)]
    assert len(left) == len(jobs) - 2
    assert ("recipe", 42) not in left and ("top-k", 43) not in left
    assert ("recipe", 43) in left and ("self-modulation", 42) in left


class PixelFeatures:
    """Inception stood in for by pixel statistics (the real network is the evaluate stage's,
    tested there): 4 features of each image, its mean and the means of 3 bands of rows."""

    device = torch.device("cpu")

    def __call__(self, images: torch.Tensor, label: str) -> np.ndarray:
        x = images.float().flatten(2).mean(1)
        bands = [x[:, i : i + 260].mean(1) for i in (0, 260, 520)]
        return torch.stack([x.mean(1), *bands], dim=1).double().numpy()


def test_each_kept_step_of_a_run_is_scored_on_its_own(tiny_root: Path, tmp_path):
    train = {"max_steps": 4, "snapshot_every": 2}
    jobs = [
        (name, 1, tiny_params(dataset="tiny", seed=1, lr=0.01, train=train, **change))
        for name, change in (
            ("recipe", {"g": {"self_modulation": False}}),
            ("self-modulation", {"g": {"self_modulation": True}}),
        )
    ]
    args = argparse.Namespace(
        data=tiny_root, n_fake=16, fake_seed=3, every=2, max_steps=4,
        **{k: getattr(ARGS, k) for k in ("preset", "n_real", "precision")},
    )  # fmt: skip
    real = np.random.default_rng(0).normal(size=(16, 4))
    rows = []
    for name, seed, params in jobs:
        gpu_sweep.train_one(name, params, tiny_root, "cpu", "fp32", tmp_path)
        saved = torch.load(tmp_path / name, weights_only=True)
        rows += levers.score((name, seed, params), saved, real, PixelFeatures(), args)
    assert [(r["setting"], r["step"]) for r in rows] == [
        (name, step) for name in ("recipe", "self-modulation") for step in (2, 4)
    ]
    assert len({r["fid"] for r in rows}) == len(rows)  # every generator scored on its own
    assert all(r["fid"] > 0 and r["kid"] == r["kid"] for r in rows)
    assert all(r["protocol"] == levers.protocol(args) for r in rows)


def test_a_runs_kept_generators_outlive_the_process_that_kept_them(tiny_root: Path, tmp_path):
    """Kept generators are files as they are kept: a run started again (after a stop) finds
    them, so its early steps are still scored."""
    params = tiny_params(
        dataset="tiny", seed=1, lr=0.01, train={"max_steps": 5, "snapshot_every": 2}
    )
    gpu_sweep.train_one("run", params, tiny_root, "cpu", "fp32", tmp_path)
    first = torch.load(tmp_path / "run", weights_only=True)
    assert sorted(first["generators"]) == [2, 4, 5]
    (tmp_path / "run").unlink()  # stopped before its last write
    gpu_sweep.train_one("run", params, tiny_root, "cpu", "fp32", tmp_path)
    again = torch.load(tmp_path / "run", weights_only=True)
    assert sorted(again["generators"]) == [2, 4, 5]
    for step in (2, 4, 5):
        for key, value in first["generators"][step].items():
            assert torch.equal(value, again["generators"][step][key]), (step, key)


def test_a_reference_larger_than_the_dataset_is_refused(tiny_root: Path):
    args = argparse.Namespace(data=tiny_root, n_real=10**6, known_features=Path("none.npy"))
    with pytest.raises(SystemExit, match=r"--n-real 1,000,000: tiny has \d+ images"):
        levers.reference(args, PixelFeatures(), "tiny")


def test_the_drawing_has_a_bar_per_setting_at_the_last_step(tmp_path):
    from PIL import Image

    rows = [
        {"setting": name, "seed": seed, "step": step, "fid": fid}
        for name, fid in (("recipe", 18.0), ("top-k", 17.0), ("self-modulation", 19.0))
        for seed in (42, 43)
        for step in (10000, 30000)
    ]
    rows += [{"setting": "all four", "seed": 42, "step": 10000, "fid": 30.0}]  # not at 30,000
    levers.draw(rows, tmp_path / "levers.png")
    with Image.open(tmp_path / "levers.png") as image:
        assert image.format == "PNG" and image.size == (800, 260)  # 3 settings' rows
