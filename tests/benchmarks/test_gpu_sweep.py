"""benchmarks/gpu_sweep.py: the settings it compares, and a curve per setting by step."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch

from ganlab.data import datasets
from ganlab.metrics import classifier
from ganlab.training.params import from_mapping
from tests.conftest import FP32, REPO, tiny_params

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_sweep  # benchmarks/ is a folder of scripts, not a package

RUN = argparse.Namespace(every=3000, max_steps=36000, seconds=425)
CPU = torch.device("cpu")
SNAPSHOTS = {"max_steps": 5, "snapshot_every": 2}


def test_every_setting_is_a_valid_change_of_the_preset_and_reaches_its_config():
    for name, change in gpu_sweep.SETTINGS.items():
        config = from_mapping(gpu_sweep.sweep_params("fashion_30min_b128", change, RUN))
        for key, value in change.items():
            expected = tuple(value) if isinstance(value, list) else value
            assert functools.reduce(getattr, key.split("."), config) == expected, (name, key)
        assert config.train.snapshot_every == 3000 and config.train.max_steps == 36000
        assert config.train.eval_every is None  # the sweep scores afterwards, all alike
        assert config.batch_size == 128 and config.ngf == 32  # the preset underneath


def test_each_setting_is_scored_at_every_kept_step_and_at_its_last(tiny_root: Path, tmp_path):
    """Tiny settings trained in-process: a classifier FID for steps 2, 4 and the last (5). The
    same setting twice scores the same to the digit, another one differently."""
    jobs = [
        (name, tiny_params(dataset="tiny", loss=loss, lr=0.01, train=SNAPSHOTS))
        for name, loss in (("bce", "bce"), ("hinge", "hinge"), ("bce again", "bce"))
    ]
    for index, (_, params) in enumerate(jobs):
        gpu_sweep.train_one(str(index), params, tiny_root, "cpu", "fp32", tmp_path)
    images, labels = datasets.load_images("tiny", tiny_root, train=True)
    trained = classifier.fit(  # features that tell images apart: scores that differ
        images, labels, 10, epochs=3, batch_size=32, lr=1e-3, seed=0, device=CPU, precision=FP32
    )
    classifier.save(tmp_path / "classifier.pt", trained)
    args = argparse.Namespace(
        device="cpu", classifier=tmp_path / "classifier.pt", data=tiny_root, n_fake=32, seed=1
    )
    torch.manual_seed(0)
    results = gpu_sweep.score(jobs, args, tmp_path)
    assert list(results) == ["bce", "hinge", "bce again"]
    for row in results.values():
        assert row["steps"] == 5 and sorted(row["classifier_fid"]) == [2, 4, 5]
    curves = {name: row["classifier_fid"] for name, row in results.items()}
    assert curves["bce again"] == curves["bce"]  # same weights, same noise: the same scores
    assert all(curves["hinge"][step] != curves["bce"][step] for step in (2, 4, 5))
    assert len(set(curves["bce"].values())) == 3  # each step's generator scored on its own
    assert all(value > 0 for value in curves["bce"].values())  # fakes are not the real set
    # what was scored: a generator per kept step, and each setting trained its own way
    kept = [torch.load(tmp_path / str(index), weights_only=True)["generators"] for index in (0, 1)]
    first_weight = [{step: next(iter(g.values())) for step, g in k.items()} for k in kept]
    assert not torch.equal(first_weight[0][2], first_weight[0][5])
    assert not torch.equal(first_weight[0][5], first_weight[1][5])
