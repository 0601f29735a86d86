"""Stage `evaluate`: FID, KID, precision/recall and domain-classifier scores of generated images.

Every number is written with the sample counts and the feature extractor it came
from. Inception Score is added when the Inception weights have their classifier.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganlab import sampling, tracking
from ganlab.config import Config, flatten, load_config
from ganlab.data import datasets
from ganlab.data.domains import Domains, load_domains
from ganlab.device import pick_device, resolve_precision
from ganlab.io import write_json
from ganlab.metrics import classifier, fid, scores
from ganlab.metrics.inception import NO_CLASSIFIER_REASON, load_fid_inception
from ganlab.sampling import generate, load_generator
from ganlab.stages import parser, read_run_id, run_stage, write_run_id

FAKE_SEED_OFFSET = 1  # fake images use seed + 1, so they differ from the fixed progress noise


def inception_model(config: Config, device: torch.device) -> torch.nn.Module:
    return fid.prepare(
        load_fid_inception(),
        device,
        config.fid.channels_last,
        fold_batchnorm=config.fid.precision == "bf16",  # the fast mode; fp32 stays exact
    )


def inception_features(
    images: torch.Tensor, model: torch.nn.Module, config: Config, device: torch.device, desc: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """pool3 features (and logits when the weights have the classifier) of uint8 images."""
    return fid.inception_outputs(
        images,
        model,
        batch_size=config.fid.batch_size,
        precision=resolve_precision(config.fid.precision, device),
        device=device,
        channels_last=config.fid.channels_last,
        desc=desc,
    )


def inception_metrics(
    fake: torch.Tensor,
    config: Config,
    real_features: np.ndarray,
    real_stats: tuple,
    device: torch.device,
    model: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """FID, KID, precision/recall (and IS when possible) in Inception's pool3 space."""
    precision = resolve_precision(config.fid.precision, device)
    model = model or inception_model(config, device)
    started = time.perf_counter()
    features, logits = inception_features(fake, model, config, device, "evaluate")
    seconds = time.perf_counter() - started
    mu_fake, sigma_fake = fid.statistics(features)
    kid_mean, kid_std = scores.kernel_inception_distance(real_features, features)
    pr_precision, pr_recall = scores.precision_recall(real_features, features)
    metrics: dict[str, Any] = {
        "fid": fid.frechet_distance(mu_fake, sigma_fake, *real_stats),
        "kid": {"mean": kid_mean, "std": kid_std},
        "precision": pr_precision,
        "recall": pr_recall,
        "feature_dims": int(features.shape[1]),
        "feature_extractor": "pytorch-fid InceptionV3 pool3",
        "fid_precision": precision.name,
        "inception_seconds": round(seconds, 1),
    }
    if len(features) <= features.shape[1]:
        metrics["fid_note"] = (
            f"{len(features)} samples for {features.shape[1]} dims: the covariance is singular and "
            "FID uses pytorch-fid's diagonal offset; compare only at equal sample counts"
        )
    if model.has_classifier:
        mean, std = fid.inception_score(logits)
        metrics["inception_score"] = {"mean": mean, "std": std}
    else:
        metrics["inception_score"] = None
        metrics["inception_score_unavailable"] = NO_CLASSIFIER_REASON
    return metrics


def classifier_metrics(
    fake: torch.Tensor, config: Config, classifier_path: Path, data_root: Path, device: torch.device
) -> dict[str, Any]:
    """FID in the domain classifier's feature space, its score, and class coverage."""
    model = classifier.load(classifier_path, device)
    real_images, real_labels = datasets.load_images(
        config.dataset, data_root, train=False, size=config.image_size
    )
    real_features, _ = classifier.outputs(
        model, real_images, device=device, precision=classifier.FP32
    )
    fake_features, fake_logits = classifier.outputs(
        model, fake, device=device, precision=classifier.FP32
    )
    score_mean, score_std = fid.inception_score(fake_logits)
    return {
        "fid": fid.frechet_distance(*fid.statistics(fake_features), *fid.statistics(real_features)),
        "score": {"mean": score_mean, "std": score_std},
        "coverage": classifier.class_coverage(fake_logits, real_labels.numpy(), model.n_classes),
        "n_real": len(real_images),
        "feature_dims": int(fake_features.shape[1]),
        "feature_extractor": "ganlab domain classifier (test split as the real set)",
    }


def inception_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The Inception-space numbers every model's evaluation logs to MLflow."""
    return {
        "fid": metrics["fid"],
        "kid": metrics["kid"]["mean"],
        "precision": metrics["precision"],
        "recall": metrics["recall"],
        "n_fake": metrics["n_fake"],
        "n_real": metrics["n_real"],
    }


def mlflow_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics, flattened for MLflow."""
    domain = metrics["classifier"]
    logged = {
        **inception_scalars(metrics),
        "classifier_fid": domain["fid"],
        "classifier_score": domain["score"]["mean"],
        "class_kl": domain["coverage"]["kl"],
        "classes_covered": domain["coverage"]["classes_covered"],
    }
    if metrics["inception_score"]:
        logged |= {
            "inception_score": metrics["inception_score"]["mean"],
            "inception_score_std": metrics["inception_score"]["std"],
        }
    return logged


def translation_metrics(
    generators: dict[str, torch.nn.Module],
    task: Domains,
    config: Config,
    classifier_path: Path,
    device: torch.device,
) -> dict[str, Any]:
    """FID of translations against the target domain's real test images, L1 terms, class share."""
    precision = resolve_precision(config.precision, device)
    translated = sampling.translate(
        generators["G"], task.source, device=device, precision=precision
    )
    real = task.target[: config.fid.n_real]
    model = inception_model(config, device)
    real_features, _ = inception_features(real, model, config, device, "real targets")
    metrics = inception_metrics(
        translated, config, real_features, fid.statistics(real_features), device, model
    )
    metrics |= {"n_real": len(real), "n_fake": len(translated), "domains": list(task.names)}
    if "F" in generators:  # CycleGAN: how well F brings translations back, in [0, 1] pixels
        back = sampling.translate(generators["F"], translated, device=device, precision=precision)
        metrics["cycle_l1"] = (back.float() - task.source.float()).abs().mean().item() / 255
    if task.paired:
        metrics["target_l1"] = (translated.float() - task.target.float()).abs().mean().item() / 255
    domain = classifier.load(classifier_path, device)
    fake_features, fake_logits = classifier.outputs(
        domain, translated, device=device, precision=classifier.FP32
    )
    real_domain_features, _ = classifier.outputs(
        domain, real, device=device, precision=classifier.FP32
    )
    predicted = torch.as_tensor(fake_logits).argmax(dim=1)
    wanted = (
        task.source_labels
        if task.target_class is None
        else torch.full_like(predicted, task.target_class)
    )
    metrics["classifier"] = {
        "fid": fid.frechet_distance(
            *fid.statistics(fake_features), *fid.statistics(real_domain_features)
        ),
        # classes task: translations the classifier puts in the target class;
        # edges: translations that keep the class of the image the edges came from
        "target_class_share": (predicted == wanted).float().mean().item(),
        "feature_extractor": "ganlab domain classifier",
    }
    return metrics


def evaluate_translator(args, config: Config) -> None:
    """pix2pix / CycleGAN: translate the test split's source domain and score the results."""
    run_id = tracking.run_for_params(
        read_run_id(args.models / "mlflow_run.json"), flatten(config), f"{config.model}-evaluate"
    )
    write_run_id(args.run, run_id)
    with tracking.open_run(run_id):
        device = pick_device()
        generators, _ = sampling.load_translator(args.models / "generator.pt", device)
        task = load_domains(config, args.data, train=False, limit=config.fid.n_fake)
        metrics = translation_metrics(generators, task, config, args.classifier, device)
        write_json(args.metrics, metrics)
        if not metrics["inception_score"]:
            tracking.set_tags({"inception_score_unavailable": NO_CLASSIFIER_REASON})
        logged = {
            **inception_scalars(metrics),
            "classifier_fid": metrics["classifier"]["fid"],
            "target_class_share": metrics["classifier"]["target_class_share"],
        }
        logged |= {k: metrics[k] for k in ("cycle_l1", "target_l1") if k in metrics}
        tracking.log_metrics(logged)
        tracking.log_artifact(args.metrics)
        extras = ", ".join(
            f"{k} {metrics[k]:.4f}" for k in ("cycle_l1", "target_l1") if k in metrics
        )
        print(
            f"{' -> '.join(task.names)}: FID {metrics['fid']:.2f} ({len(task.source)} translations "
            f"vs {metrics['n_real']} real targets), {extras}, target-class share "
            f"{metrics['classifier']['target_class_share']:.3f}"
        )
        print(tracking.run_url(run_id))


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--models", type=Path, required=True, help="folder from train")
    arguments.add_argument("--data", type=Path, required=True, help="data root from download")
    arguments.add_argument("--stats", type=Path, required=True, help="reference .npz")
    arguments.add_argument("--features", type=Path, required=True, help="real Inception features")
    arguments.add_argument("--stats-info", type=Path, required=True, help="JSON from fid_stats")
    arguments.add_argument("--classifier", type=Path, required=True, help="domain classifier")
    arguments.add_argument("--metrics", type=Path, required=True, help="eval.json to write")
    arguments.add_argument("--run", type=Path, required=True, help="MLflow run id JSON to write")
    args = arguments.parse_args()

    config = load_config(args.params)
    if config.translates:
        evaluate_translator(args, config)
        return
    run_id = tracking.run_for_params(
        read_run_id(args.models / "mlflow_run.json"), flatten(config), f"{config.model}-evaluate"
    )
    write_run_id(args.run, run_id)
    stats_info = json.loads(args.stats_info.read_text(encoding="utf-8"))

    with tracking.open_run(run_id):
        device = pick_device()
        netG, saved = load_generator(args.models / "generator.pt", device)
        fake = generate(
            netG,
            config.fid.n_fake,
            z_dim=saved["spec"]["z_dim"],
            latent=saved["latent"],
            seed=config.seed + FAKE_SEED_OFFSET,
            device=device,
            precision=resolve_precision(config.precision, device),
        )
        metrics = inception_metrics(
            fake, config, fid.load_features(args.features), fid.load_stats(args.stats), device
        )
        metrics |= {"n_real": stats_info["n_real"], "n_fake": len(fake)}
        metrics["classifier"] = classifier_metrics(fake, config, args.classifier, args.data, device)
        write_json(args.metrics, metrics)
        if not metrics["inception_score"]:
            tracking.set_tags({"inception_score_unavailable": NO_CLASSIFIER_REASON})
        tracking.log_metrics(mlflow_metrics(metrics))
        tracking.log_artifact(args.metrics)
        domain = metrics["classifier"]
        print(
            f"FID {metrics['fid']:.2f} ({len(fake)} fake vs {metrics['n_real']} real images), "
            f"KID {metrics['kid']['mean']:.4f}, precision {metrics['precision']:.3f}, "
            f"recall {metrics['recall']:.3f}; classifier FID {domain['fid']:.2f}, "
            f"{domain['coverage']['classes_covered']}/{domain['coverage']['n_classes']} classes"
        )
        print(tracking.run_url(run_id))


if __name__ == "__main__":
    run_stage(main)
