"""The metrics registry: every row computes what it declares, on features with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganlab.metrics import fid
from ganlab.metrics.features import Features
from ganlab.metrics.registry import METRICS, score, unavailable


def full_features(n: int = 60, dims: int = 8, classes: int = 3) -> Features:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(n, dims))
    fake = rng.normal(size=(n, dims))
    logits = rng.normal(size=(n, classes))
    images = torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator())
    return Features(
        fake_inception=fake,
        fake_logits=logits,
        real_inception=real,
        real_stats=fid.statistics(real),
        fake_classifier=fake,
        fake_classifier_logits=logits,
        real_classifier=real,
        real_labels=np.arange(n) % classes,
        n_classes=classes,
        wanted_classes=logits.argmax(axis=1),
        translated=images,
        cycled=images,
        source=images,
        target=images,
    )


@pytest.mark.parametrize("name", METRICS)
def test_every_metric_yields_the_numbers_it_declares(name):
    metric = METRICS[name]
    values = metric.compute(full_features())
    assert set(metric.better) <= set(values)
    assert all(isinstance(value, int | float) and np.isfinite(value) for value in values.values())
    assert set(metric.better.values()) <= {"lower", "higher"}


def test_known_answers():
    features = full_features()
    values = score(features)
    assert values["target_class_share"] == 1.0  # every translation in the class it should be
    assert values["cycle_l1"] == 0.0 and values["target_l1"] == 0.0  # identical images
    same = Features(fake_inception=features.real_inception, real_stats=features.real_stats)
    assert score(same, ("fid",))["fid"] == pytest.approx(0.0, abs=1e-6)
    black, white = torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.full((2, 1, 4, 4), 255)
    assert score(Features(cycled=white, source=black))["cycle_l1"] == pytest.approx(1.0)


def test_metrics_whose_features_are_missing_are_skipped_and_say_why():
    features = full_features()
    features.fake_logits = None  # offline Inception weights: no classifier layer
    values = score(features)
    assert "inception_score" not in values and "fid" in values
    assert "no classifier" in unavailable(features)["inception_score_unavailable"]
    assert score(Features()) == {}
