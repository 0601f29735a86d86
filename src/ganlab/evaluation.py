"""Scoring a trained generator (or translator) against the pipeline's reference sets.

Every registered metric (ganlab.metrics.registry) from one set of features: Inception pool3
features of the fakes and of the reference images, and the domain classifier's. The evaluate
stage and the benchmarks that score snapshots call the same functions.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganlab import sampling
from ganlab.config import Config
from ganlab.data import datasets
from ganlab.data.domains import load_domains
from ganlab.device import resolve_precision
from ganlab.metrics import classifier, fid, registry
from ganlab.metrics.features import (
    Features,
    classifier_features,
    inception_features,
    inception_network,
    inception_precision,
    runtime_name,
)
from ganlab.metrics.inception import ensure_weights
from ganlab.training.monitor import selection_note

FAKE_SEED_OFFSET = 1  # fake images use seed + 1, so they differ from the fixed progress noise
INCEPTION = "pytorch-fid InceptionV3 pool3"
CLASSIFIER = "ganlab domain classifier (test split as the real set)"


@dataclass(frozen=True)
class References:
    """The files generated images are scored against (the fid_stats and classifier stages'
    outputs, and the data root)."""

    data: Path
    stats: Path
    features: Path
    stats_info: Path
    classifier: Path


def generated_images(generator: Path, config: Config, device: torch.device) -> torch.Tensor:
    """fid.n_fake images of a generator file, drawn from seed + FAKE_SEED_OFFSET."""
    netG, saved = sampling.load_generator(generator, device)
    return sampling.generate(
        netG,
        config.fid.n_fake,
        z_dim=saved["spec"]["z_dim"],
        latent=saved["latent"],
        seed=config.seed + FAKE_SEED_OFFSET,
        device=device,
        precision=resolve_precision(config.precision, device),
    )


def score_generator(
    generator: Path, references: References, config: Config, device: torch.device
) -> tuple[dict, dict]:
    """(metrics, provenance) of config.fid.n_fake samples against the reference sets."""
    fake = generated_images(generator, config, device)
    started = time.perf_counter()
    fake_inception, fake_logits = inception_features(
        fake, inception_network(config.fid, device), config.fid, device, "evaluate"
    )
    seconds = time.perf_counter() - started
    model = classifier.load(references.classifier, device)
    real_images, real_labels = datasets.load_images(
        config.dataset, references.data, train=False, size=config.image_size
    )
    fake_classifier, fake_classifier_logits = classifier_features(model, fake, device)
    features = Features(
        fake_inception=fake_inception,
        fake_logits=fake_logits,
        real_inception=fid.load_features(references.features),
        real_stats=fid.load_stats(references.stats),
        fake_classifier=fake_classifier,
        fake_classifier_logits=fake_classifier_logits,
        real_classifier=classifier_features(model, real_images, device)[0],
        real_labels=real_labels.numpy(),
        n_classes=model.n_classes,
    )
    stats_info = json.loads(references.stats_info.read_text(encoding="utf-8"))
    counts = {"n_fake": len(fake), "n_real": stats_info["n_real"]}
    counts["classifier_n_real"] = len(real_images)
    info = provenance(config, features, device, seconds)
    info["fid_reference"] = f"{stats_info['n_real']} training images (data/fid_stats.npz)"
    if config.evaluate.checkpoint == "best" and config.train.eval_every is not None:
        info["best_generator_picked_on"] = selection_note(config, references.data)
    return registry.score(features) | counts, info


def score_translator(
    generator: Path, references: References, config: Config, device: torch.device
) -> tuple[dict, dict]:
    """Translations of the test split's source domain against its real target images."""
    generators, _ = sampling.load_translator(generator, device)
    task = load_domains(config, references.data, train=False, limit=config.fid.n_fake)
    precision = resolve_precision(config.precision, device)
    translated = sampling.translate(
        generators["G"], task.source, device=device, precision=precision
    )
    real = task.target[: config.fid.n_real]
    network = inception_network(config.fid, device)
    real_inception, _ = inception_features(real, network, config.fid, device, "real targets")
    started = time.perf_counter()
    fake_inception, fake_logits = inception_features(
        translated, network, config.fid, device, "evaluate"
    )
    seconds = time.perf_counter() - started
    model = classifier.load(references.classifier, device)
    fake_classifier, fake_classifier_logits = classifier_features(model, translated, device)
    # classes task: the target class; edges: the class of the image the edges came from
    wanted = task.source_labels if task.target_class is None else task.target_class
    features = Features(
        fake_inception=fake_inception,
        fake_logits=fake_logits,
        real_inception=real_inception,
        real_stats=fid.statistics(real_inception),
        fake_classifier=fake_classifier,
        fake_classifier_logits=fake_classifier_logits,
        real_classifier=classifier_features(model, real, device)[0],
        wanted_classes=torch.as_tensor(wanted).expand(len(translated)).numpy(),
        translated=translated,
        cycled=(
            sampling.translate(generators["F"], translated, device=device, precision=precision)
            if "F" in generators
            else None
        ),
        source=task.source,
        target=task.target if task.paired else None,
    )
    counts = {"n_fake": len(translated), "n_real": len(real)}
    info = provenance(config, features, device, seconds) | {"domains": list(task.names)}
    return registry.score(features) | counts, info


def provenance(config: Config, features: Features, device: torch.device, seconds: float) -> dict:
    """How the numbers were made: extractors, precision, device, timing, what is missing."""
    n, dims = features.fake_inception.shape
    note = {}
    if n <= dims:
        note["fid_note"] = (
            f"{n} samples for {dims} dims: the covariance is singular (FID is still exact over "
            "its nonzero eigenvalues) and biased upwards; compare only at equal sample counts"
        )
    return note | {
        "feature_extractor": INCEPTION,
        "inception_weights": ensure_weights(),  # where they came from: downloaded or rebuilt
        "feature_dims": int(dims),
        "classifier_feature_extractor": CLASSIFIER,
        "fid_precision": inception_precision(config.fid, device).name,
        "inception_runtime": runtime_name(config.fid, device),
        "device": device.type,
        "inception_seconds": round(seconds, 1),
        **registry.unavailable(features),
    }


def ordered(metrics: dict[str, Any]) -> dict[str, Any]:
    """The registry's order (FID first), then the sample counts."""
    names = [name for metric in registry.METRICS.values() for name in metric.better]
    first = [name for name in names if name in metrics]
    return {name: metrics[name] for name in first} | {
        k: v for k, v in metrics.items() if k not in first
    }
