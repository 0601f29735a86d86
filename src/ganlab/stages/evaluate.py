"""Stage `evaluate`: every registered metric of generated images (or translations).

metrics/eval.json holds numbers only, FID first; what they were computed with (feature
extractors, precision, why a metric is missing) goes to --info and to MLflow tags.
"""

from __future__ import annotations

from pathlib import Path

from ganlab import checkpoint, evaluation, snapshots, tracking
from ganlab.config import flatten
from ganlab.device import pick_device
from ganlab.io import write_json
from ganlab.models import translates
from ganlab.stages import add_generator_arguments, parser, run_stage
from ganlab.training import params


def main() -> None:
    arguments = parser(__doc__)
    add_generator_arguments(arguments)
    arguments.add_argument("--train-run", type=Path, required=True, help="run id JSON from train")
    arguments.add_argument("--data", type=Path, required=True, help="data root from download")
    arguments.add_argument("--stats", type=Path, required=True, help="reference .npz")
    arguments.add_argument("--features", type=Path, required=True, help="real Inception features")
    arguments.add_argument("--stats-info", type=Path, required=True, help="fid_stats info JSON")
    arguments.add_argument("--classifier", type=Path, required=True, help="domain classifier")
    arguments.add_argument("--metrics", type=Path, required=True, help="eval.json to write")
    arguments.add_argument("--info", type=Path, required=True, help="provenance JSON to write")
    arguments.add_argument(
        "--mlflow-run", type=Path, required=True, help="MLflow run id JSON to write"
    )
    args = arguments.parse_args()
    config = params.load(args.params)
    generator = snapshots.generator_path(
        config.evaluate.checkpoint,
        config.evaluate.epoch,
        args.generator,
        args.best_generator,
        args.snapshots,
    )
    references = evaluation.References(
        args.data, args.stats, args.features, args.stats_info, args.classifier
    )
    trained_run_id = tracking.read_run_id(args.train_run)
    run_id = tracking.run_for_params(trained_run_id, flatten(config), f"{config.model}-evaluate")
    tracking.write_run_id(args.mlflow_run, run_id)
    with tracking.open_run(run_id):
        device = pick_device()
        translator = translates(config.model)
        score = evaluation.score_translator if translator else evaluation.score_generator
        metrics, info = score(generator, references, config, device)
        saved = checkpoint.load(generator)  # which step (and snapshot epoch) was scored
        chosen = {f"checkpoint_{key}": saved[key] for key in ("step", "epoch") if key in saved}
        metrics = evaluation.ordered(metrics | chosen)
        info["checkpoint"] = config.evaluate.checkpoint
        write_json(args.metrics, metrics, sort_keys=False)
        write_json(args.info, info)
        tracking.set_tags({k: v for k, v in info.items() if isinstance(v, str)})
        tracking.log_metrics(metrics)
        headline = {k: metrics[k] for k in ("fid", "kid", "n_fake") if k in metrics}
        tracking.tag_model_versions(trained_run_id, headline)  # the registry shows the scores
        tracking.log_artifact(args.metrics)
        tracking.log_artifact(args.info)
        print(", ".join(f"{name} {value:.4g}" for name, value in metrics.items()))
        print(tracking.run_url(run_id))


if __name__ == "__main__":
    run_stage(main)
