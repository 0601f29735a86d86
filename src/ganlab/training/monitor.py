"""Quality while training: the generator scored every train.eval_every steps.

A cheap score every time (classifier FID: the domain classifier's features of
train.eval_samples fakes against those of up to 10,000 training images outside the FID
reference, ganlab.data.datasets.reference_rows) picks the best generator: never on the images
the evaluate stage reports on (the FID reference, and the test split of classifier FID). The
evaluate stage's own FID (pytorch-fid's Inception, train.fid_samples fakes against
data/fid_stats.npz) comes every train.fid_every steps and at the end, when fid_every is
set. Both go through the metrics registry, as in the evaluate stage. The noise is the
same seeded draw each time, from its own generator: training's RNG is untouched, so a
run with scoring trains the same weights as one without.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganlab import sampling
from ganlab.config import Config, FidSection
from ganlab.data import datasets
from ganlab.device import Precision
from ganlab.errors import GanlabError
from ganlab.metrics import classifier, fid, registry
from ganlab.metrics.classifier import DomainClassifier
from ganlab.metrics.features import (
    Features,
    classifier_features,
    inception_features,
    inception_network,
)
from ganlab.metrics.fid import MetricError
from ganlab.metrics.inception import FIDInception
from ganlab.metrics.onnx_runtime import OnnxInception

EVAL_SEED_OFFSET = 2  # its own noise: not the progress grids' (seed) nor evaluate's (seed + 1)


@dataclass
class Reference:
    """What fakes are scored against; loaded once by the train stage."""

    classifier: DomainClassifier
    real_classifier: np.ndarray  # the classifier's features of the selection images
    inception: FIDInception | OnnxInception | None = None  # None: no Inception FID while training
    real_stats: tuple[np.ndarray, np.ndarray] | None = None  # data/fid_stats.npz
    fid: FidSection | None = None


def load_reference(
    config: Config,
    data: Path,
    classifier_path: Path | None,
    stats_path: Path | None,
    image_shape: tuple[int, ...],
    device: torch.device,
) -> Reference | None:
    """What the generator is scored against while it trains (None: train.eval_every is null):
    the classifier stage's network and its features of the selection images (training images
    outside the FID reference), and with train.fid_every the Inception network and the
    fid_stats stage's statistics."""
    if config.train.eval_every is None:
        return None
    for name, path in (("--classifier", classifier_path), ("--stats", stats_path)):
        if path is None or not path.is_file():
            raise GanlabError(
                f"train.eval_every = {config.train.eval_every} scores the generator while it "
                f"trains: expected {name} to name an existing file (the classifier and fid_stats "
                f"stages' outputs), got {path}"
            )
    model = classifier.load(classifier_path, device)
    if tuple(model.image_shape) != tuple(image_shape):
        raise GanlabError(
            f"{classifier_path} was trained on {tuple(model.image_shape)} images, the generator "
            f"makes {tuple(image_shape)}: rerun the classifier stage (dvc repro)"
        )
    reference = Reference(
        model, classifier_features(model, selection_images(config, data), device)[0]
    )
    if config.train.fid_every is not None:  # Inception FID while training, and at the end
        reference.inception = inception_network(config.fid, device)
        reference.real_stats, reference.fid = fid.load_stats(stats_path), config.fid
    return reference


def selection_images(config: Config, data: Path) -> torch.Tensor:
    """The training images the best generator is picked on: none of the FID reference's."""
    images, _ = datasets.load_images(config.dataset, data, train=True, size=config.image_size)
    _, rows = datasets.reference_rows(len(images), config.fid.n_real)
    if len(rows) < 2:
        raise GanlabError(
            f"{config.dataset} has {len(images)} training images and fid.n_real = "
            f"{config.fid.n_real} takes them all: the best generator needs others to be picked "
            "on; lower fid.n_real or set train.eval_every: null"
        )
    return images[rows]


def selection_note(config: Config, data: Path) -> str:
    """What the best generator was picked on, for eval_info."""
    n = len(selection_images(config, data))
    return (
        f"classifier FID of {config.train.eval_samples} fakes against {n} training images "
        f"outside the FID reference's {config.fid.n_real}, every {config.train.eval_every} steps"
    )


def _score(features: Features, name: str) -> float:
    """A registry metric, NaN when its features are absent or no real distance exists."""
    try:
        return registry.score(features, (name,)).get(name, math.nan)
    except MetricError:  # a collapsed generator: a gap in the curve, not a crash
        return math.nan


class Monitor:
    """An Evaluator (ganlab.training.runner) for noise-to-image generators."""

    def __init__(
        self,
        reference: Reference,
        sampler: Callable[[], nn.Module],
        config: Config,
        *,
        device: torch.device,
        precision: Precision,
    ) -> None:
        self.reference, self.sampler, self.config = reference, sampler, config
        self.device, self.precision = device, precision
        self.columns = ("classifier_fid", "fid")

    def due(self, step: int) -> bool:
        return step % self.config.train.eval_every == 0

    def _fid_due(self, step: int, final: bool) -> bool:
        every = self.config.train.fid_every
        return self.reference.inception is not None and (
            final or (every is not None and step % every == 0)
        )

    def evaluate(self, step: int, final: bool) -> list[float]:
        """[classifier FID, Inception FID or NaN when not due] of the generator as it is now."""
        train = self.config.train
        fid_due = self._fid_due(step, final)
        n = max(train.eval_samples, train.fid_samples if fid_due else 0)
        generator = self.sampler()  # the EMA G with its own BatchNorm statistics, if kept
        was_training = generator.training
        generator.eval()
        fakes = sampling.generate(
            generator,
            n,
            z_dim=self.config.z_dim,
            latent=self.config.latent,
            seed=self.config.seed + EVAL_SEED_OFFSET,
            device=self.device,
            precision=self.precision,
        )
        generator.train(was_training)
        features = Features(real_classifier=self.reference.real_classifier)
        features.fake_classifier, _ = classifier_features(
            self.reference.classifier, fakes[: train.eval_samples], self.device
        )
        if fid_due:
            features.real_stats = self.reference.real_stats
            features.fake_inception, _ = inception_features(
                fakes[: train.fid_samples],
                self.reference.inception,
                self.reference.fid,
                self.device,
                desc=f"FID at step {step}",
            )
        return [_score(features, name) for name in self.columns]

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.sampler().state_dict().items()}
