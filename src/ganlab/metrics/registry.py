"""The metrics registry: a name, which way is better, the features it reads, the function.

Adding a metric is one row here (plus its test): the evaluate stage, eval.json, MLflow
and the leaderboard pick it up by name. Values are plain numbers, under the names that
eval.json and MLflow use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ganlab.metrics import classifier, fid, scores
from ganlab.metrics.features import Features
from ganlab.metrics.inception import NO_CLASSIFIER_REASON


@dataclass(frozen=True)
class Metric:
    name: str
    better: dict[str, str]  # each value it yields -> "lower" or "higher" is better
    needs: tuple[str, ...]  # Features fields it reads; skipped when one is None
    compute: Callable[[Features], dict[str, float]]


def _fid(f: Features) -> dict[str, float]:
    return {"fid": fid.frechet_distance(*fid.statistics(f.fake_inception), *f.real_stats)}


def _kid(f: Features) -> dict[str, float]:
    mean, std = scores.kernel_inception_distance(f.real_inception, f.fake_inception)
    return {"kid": mean, "kid_std": std}


def _precision_recall(f: Features) -> dict[str, float]:
    """Kynkaanniemi et al.'s metric on Inception pool3 features (the paper uses VGG-16's)."""
    precision, recall = scores.precision_recall(f.real_inception, f.fake_inception)
    return {"inception_precision": precision, "inception_recall": recall}


def _inception_score(f: Features) -> dict[str, float]:
    mean, std = fid.inception_score(f.fake_logits)
    return {"inception_score": mean, "inception_score_std": std}


def _classifier_fid(f: Features) -> dict[str, float]:
    fake, real = fid.statistics(f.fake_classifier), fid.statistics(f.real_classifier)
    return {"classifier_fid": fid.frechet_distance(*fake, *real)}


def _classifier_score(f: Features) -> dict[str, float]:
    mean, std = fid.inception_score(f.fake_classifier_logits)
    return {"classifier_score": mean, "classifier_score_std": std}


def _class_coverage(f: Features) -> dict[str, float]:
    coverage = classifier.class_coverage(f.fake_classifier_logits, f.real_labels, f.n_classes)
    return {"class_kl": coverage["kl"], "classes_covered": coverage["classes_covered"]}


def _l1(a, b) -> float:
    """Mean absolute difference of uint8 images, in [0, 1] pixel units."""
    return (a.float() - b.float()).abs().mean().item() / 255


def _cycle_l1(f: Features) -> dict[str, float]:
    return {"cycle_l1": _l1(f.cycled, f.source)}


def _target_l1(f: Features) -> dict[str, float]:
    return {"target_l1": _l1(f.translated, f.target)}


def _target_class_share(f: Features) -> dict[str, float]:
    """Translations the classifier puts in the class they should have."""
    predicted = f.fake_classifier_logits.argmax(axis=1)
    return {"target_class_share": float(np.mean(predicted == f.wanted_classes))}


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("fid", {"fid": "lower"}, ("fake_inception", "real_stats"), _fid),
        Metric("kid", {"kid": "lower"}, ("fake_inception", "real_inception"), _kid),
        Metric(
            "precision_recall",
            {"inception_precision": "higher", "inception_recall": "higher"},
            ("fake_inception", "real_inception"),
            _precision_recall,
        ),
        Metric(
            "inception_score", {"inception_score": "higher"}, ("fake_logits",), _inception_score
        ),
        Metric(
            "classifier_fid",
            {"classifier_fid": "lower"},
            ("fake_classifier", "real_classifier"),
            _classifier_fid,
        ),
        Metric(
            "classifier_score",
            {"classifier_score": "higher"},
            ("fake_classifier_logits",),
            _classifier_score,
        ),
        Metric(
            "class_coverage",
            {"class_kl": "lower", "classes_covered": "higher"},
            ("fake_classifier_logits", "real_labels"),
            _class_coverage,
        ),
        Metric(
            "target_class_share",
            {"target_class_share": "higher"},
            ("fake_classifier_logits", "wanted_classes"),
            _target_class_share,
        ),
        Metric("cycle_l1", {"cycle_l1": "lower"}, ("cycled", "source"), _cycle_l1),
        Metric("target_l1", {"target_l1": "lower"}, ("translated", "target"), _target_l1),
    )
}


def score(features: Features, names: tuple[str, ...] | None = None) -> dict[str, float]:
    """Every registered metric (or those named) whose features are there, as flat numbers."""
    values: dict[str, float] = {}
    for metric in (METRICS[name] for name in names or METRICS):
        if all(getattr(features, need) is not None for need in metric.needs):
            values |= metric.compute(features)
    return values


def unavailable(features: Features) -> dict[str, str]:
    """Why a metric the lab knows was not computed, for the run's provenance."""
    reasons = {}
    if features.fake_inception is not None and features.fake_logits is None:
        reasons["inception_score_unavailable"] = NO_CLASSIFIER_REASON
    return reasons
