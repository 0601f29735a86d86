"""Stage `evaluate`: FID (and Inception Score when the weights allow) of generated images."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ganlab import fid, tracking
from ganlab.config import flatten, load_config
from ganlab.device import pick_device, resolve_precision
from ganlab.inception import NO_CLASSIFIER_REASON, load_fid_inception
from ganlab.io import write_json
from ganlab.sampling import generate, load_generator
from ganlab.stages import parser, read_run_id, run_stage, write_run_id

FAKE_SEED_OFFSET = 1  # fake images use seed + 1, so they differ from the fixed progress noise


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--models", type=Path, required=True, help="folder from train")
    arguments.add_argument("--stats", type=Path, required=True, help="reference .npz")
    arguments.add_argument("--stats-info", type=Path, required=True, help="JSON from fid_stats")
    arguments.add_argument("--metrics", type=Path, required=True, help="eval.json to write")
    arguments.add_argument("--run", type=Path, required=True, help="MLflow run id JSON to write")
    args = arguments.parse_args()

    config = load_config(args.params)
    run_id = tracking.run_for_params(
        read_run_id(args.models / "mlflow_run.json"), flatten(config), f"{config.model}-evaluate"
    )
    write_run_id(args.run, run_id)
    stats_info = json.loads(args.stats_info.read_text(encoding="utf-8"))
    mu_real, sigma_real = fid.load_stats(args.stats)

    with tracking.open_run(run_id):
        device = pick_device()
        netG, saved = load_generator(args.models / "generator.pt", device)
        precision = resolve_precision(config.precision, device)
        fake = generate(
            netG,
            config.fid.n_fake,
            z_dim=saved["spec"]["z_dim"],
            latent=saved["latent"],
            seed=config.seed + FAKE_SEED_OFFSET,
            device=device,
            precision=precision,
        )
        fid_precision = resolve_precision(config.fid.precision, device)
        model = fid.prepare(load_fid_inception(), fid_precision, device)
        started = time.perf_counter()
        features, logits = fid.inception_outputs(
            fake,
            model,
            batch_size=config.fid.batch_size,
            precision=fid_precision,
            device=device,
            desc="evaluate",
        )
        seconds = time.perf_counter() - started
        mu_fake, sigma_fake = fid.statistics(features)
        metrics: dict = {
            "fid": fid.frechet_distance(mu_fake, sigma_fake, mu_real, sigma_real),
            "n_real": stats_info["n_real"],
            "n_fake": len(fake),
            "feature_dims": int(features.shape[1]),
            "feature_extractor": "pytorch-fid InceptionV3 pool3",
            "fid_precision": fid_precision.name,
            "inception_seconds": round(seconds, 1),
        }
        if model.has_classifier:
            mean, std = fid.inception_score(logits)
            metrics["inception_score"] = {"mean": mean, "std": std}
        else:
            metrics["inception_score"] = None
            metrics["inception_score_unavailable"] = NO_CLASSIFIER_REASON
        write_json(args.metrics, metrics)
        logged = {"fid": metrics["fid"], "n_fake": len(fake), "n_real": metrics["n_real"]}
        if metrics["inception_score"]:
            logged |= {"inception_score": mean, "inception_score_std": std}
        else:
            tracking.set_tags({"inception_score_unavailable": NO_CLASSIFIER_REASON})
        tracking.log_metrics(logged)
        tracking.log_artifact(args.metrics)
        print(f"FID {metrics['fid']:.2f} ({len(fake)} fake vs {metrics['n_real']} real images)")
        print(tracking.run_url(run_id))


if __name__ == "__main__":
    run_stage(main)
