"""Stage `train`: one GAN training run, resumable, tracked in a new MLflow run.

The resume checkpoint lives outside the stage's outs (DVC deletes outs before it
reruns a stage): `dvc repro` after an interruption continues from it when params
are unchanged, and it is removed once training completes.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import functools
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from ganlab import checkpoint, snapshots, tracking
from ganlab.config import Config, ConfigError, flatten
from ganlab.data import datasets, domains
from ganlab.device import pick_device, resolve_precision
from ganlab.figures import frame_name
from ganlab.images import save_grid
from ganlab.io import atomic_path, write_json
from ganlab.metrics import classifier, fid
from ganlab.metrics.features import classifier_features, inception_network
from ganlab.models import count_parameters, translates
from ganlab.stages import StageError, parser, run_stage, write_run_id
from ganlab.training import distributed, params, semi_supervised, translation
from ganlab.training.gan import history_columns_of, model_spec, train
from ganlab.training.monitor import Reference
from ganlab.training.precision_probe import probe_summary, training_precision
from ganlab.training.runner import EVAL_BASE_COLUMNS, Hooks, history_columns

TIMING = ("train_seconds", "images_per_second", "eval_seconds")  # --info, not metrics


def _resumable_run_id(config: Config, checkpoint_path: Path) -> str | None:
    """The MLflow run of an interrupted run with the same training params, if there is one."""
    if not checkpoint_path.is_file():
        return None
    state = checkpoint.load(checkpoint_path)
    if state.get("fingerprint") != config.training_fingerprint():
        print(f"{checkpoint_path} was made with other params; starting afresh")
        return None
    print(f"resuming from {checkpoint_path} at step {state['progress']['step']}")
    return state["run_id"]


def registered_model_name(config: Config) -> str:
    """One registry entry per dataset and model family: versions are its training runs."""
    return f"ganlab-{config.dataset}-{config.model}"


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--data", type=Path, required=True, help="data root from download")
    arguments.add_argument("--generator", type=Path, required=True, help="last generator to write")
    arguments.add_argument(
        "--best-generator", type=Path, required=True, help="best-scored generator to write"
    )
    # not --run: torchrun (train.nproc > 1) would take it for an abbreviation of its --run-path
    arguments.add_argument(
        "--mlflow-run", type=Path, required=True, help="MLflow run id JSON to write"
    )
    arguments.add_argument(
        "--snapshots", type=Path, required=True, help="folder for per-epoch G and D snapshots"
    )
    arguments.add_argument(
        "--discriminator",
        type=Path,
        required=True,
        help="the semi-supervised GAN's D, its classifier, to write (when semi_supervised is on)",
    )
    arguments.add_argument("--progress", type=Path, required=True, help="folder for epoch grids")
    arguments.add_argument("--history", type=Path, required=True, help="loss history CSV")
    arguments.add_argument("--metrics", type=Path, required=True, help="training metrics JSON")
    arguments.add_argument("--info", type=Path, required=True, help="training time JSON")
    arguments.add_argument("--checkpoint", type=Path, required=True, help="resume checkpoint")
    arguments.add_argument(
        "--quality", type=Path, required=True, help="classifier-FID-during-training CSV"
    )
    arguments.add_argument(
        "--fid-history", type=Path, required=True, help="FID-during-training CSV"
    )
    arguments.add_argument("--classifier", type=Path, help="domain classifier (train.eval_every)")
    arguments.add_argument("--stats", type=Path, help="FID reference .npz (train.eval_every)")
    args = arguments.parse_args()

    config = params.load(args.params)
    if translates(config.model):
        _train_translator(args, config, pick_device())
        return
    if config.train.nproc > 1 and not distributed.under_torchrun():
        distributed.relaunch(config.train.nproc, "ganlab.stages.train")  # does not return
    if distributed.under_torchrun():
        world, device = distributed.init_from_env()
    else:
        world, device = distributed.World(), pick_device()
    if config.train.sync_batchnorm and world.size > 1 and device.type != "cuda":
        raise ConfigError(
            "params.yaml: train.sync_batchnorm = true needs CUDA devices (PyTorch's SyncBatchNorm "
            "runs on GPUs only): expected false on the CPU"
        )
    try:
        _train(args, config, world, device)
    finally:
        distributed.shutdown()


def _train(args, config: Config, world: distributed.World, device: torch.device) -> None:
    datasets.verify(config.dataset, args.data, config.download.trusted_md5)
    images, labels = datasets.load_images(
        config.dataset, args.data, train=True, limit=config.train.subset, size=config.image_size
    )
    n_classes = len(datasets.class_names(config.dataset, args.data))
    if len(images) < config.batch_size:
        raise datasets.DataError(
            f"{len(images)} training images but batch_size = {config.batch_size}: "
            "lower batch_size or raise train.subset"
        )
    spec = model_spec(config, tuple(images.shape[1:]), n_classes)
    precision, probe = training_precision(config, spec, device, world.size)
    if probe is not None:
        print(f"precision: auto -> {precision.name} on this CPU ({probe_summary(probe)})")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    run_id = reference = None
    if world.is_main:  # only rank 0 scores, talks to MLflow and writes outputs
        reference = _reference(args, config, images.shape[1:], device)  # checks its files first
        run_id = _start_run(config, args)
    run_id = distributed.broadcast(run_id, world)
    run_training = functools.partial(
        train,
        config,
        images,
        labels,
        n_classes=n_classes,
        device=device,
        precision=precision,
        checkpoint_path=args.checkpoint,
        run_id=run_id,
        reference=reference,
    )
    if not world.is_main:
        run_training()  # the other ranks train, rank 0 does the rest
        return

    with tracking.open_run(run_id, system_metrics=True):
        tracking.set_tags(
            {"device": device.type, "precision": precision.name, "processes": world.size}
            | ({f"precision_probe_{k}": v for k, v in probe.items()} if probe else {})
        )
        source = datasets.source_of(config.dataset, config.download.image_folder)
        tracking.log_dataset(config.dataset, datasets.digest(images), source)

        started = time.perf_counter()
        saved = {
            "model": config.model,
            "spec": dataclasses.asdict(spec),
            "latent": config.latent,
            "precision": precision.name,
        }
        columns = history_columns_of(config)
        hooks = _hooks(args, columns, config.render.nrow)
        hooks.on_snapshot = functools.partial(
            snapshots.save, folder=_snapshot_staging(args), generator_info=saved, columns=columns
        )
        result = run_training(hooks=hooks)
        kept = snapshots.publish(_snapshot_staging(args), args.snapshots)
        last = result.netG.state_dict()
        checkpoint.save(args.generator, saved | {"state_dict": last, "step": result.steps})
        best_step = result.steps if result.best_step is None else result.best_step
        best = last if result.best_state is None else result.best_state
        checkpoint.save(args.best_generator, saved | {"state_dict": best, "step": best_step})
        history = _write_history(
            pd.DataFrame(result.history, columns=list(history_columns_of(config))), args.history
        )
        extra = {"snapshots": len(kept)} | _quality_metrics(result)
        extra |= _semi_supervised_metrics(args, config, result, spec, device, precision)
        _record_metrics(args, result, len(images), result.netG, history, extra)
        _log_epoch_means(history)
        if not result.evals:  # train.eval_every: null
            _write_quality([], args.quality, args.fid_history)
        best_net = copy.deepcopy(result.netG)
        best_net.load_state_dict(best)
        tracking.log_generator(
            best_net.cpu().float(),
            config.z_dim,
            registered_model_name(config),
            saved | {"step": best_step},
        )
        tracking.log_artifact(args.history)
        args.checkpoint.unlink(missing_ok=True)
        wall = time.perf_counter() - started
        print(f"trained {result.steps} steps in {wall:.0f} s; {tracking.run_url(run_id)}")


def _reference(args, config: Config, image_shape, device: torch.device) -> Reference | None:
    """What the generator is scored against while it trains (None: train.eval_every is null)."""
    if config.train.eval_every is None:
        return None
    for name, path in (("--classifier", args.classifier), ("--stats", args.stats)):
        if path is None or not path.is_file():
            raise StageError(
                f"train.eval_every = {config.train.eval_every} scores the generator while it "
                f"trains: expected {name} to name an existing file (the classifier and fid_stats "
                f"stages' outputs), got {path}"
            )
    model = classifier.load(args.classifier, device)
    if tuple(model.image_shape) != tuple(image_shape):
        raise StageError(
            f"{args.classifier} was trained on {tuple(model.image_shape)} images, the generator "
            f"makes {tuple(image_shape)}: rerun the classifier stage (dvc repro)"
        )
    real, _ = datasets.load_images(config.dataset, args.data, train=False, size=config.image_size)
    reference = Reference(model, classifier_features(model, real, device)[0])
    if config.train.fid_every is not None:  # Inception FID while training, and at the end
        reference.inception = inception_network(config.fid, device)
        reference.real_stats, reference.fid = fid.load_stats(args.stats), config.fid
    return reference


def _semi_supervised_metrics(
    args, config: Config, result, spec, device: torch.device, precision
) -> dict[str, float]:
    """The semi-supervised GAN's product, D's test accuracy, beside the labeled-only baseline's."""
    if result.labeled is None:
        return {}
    test_images, test_labels = datasets.load_images(
        config.dataset, args.data, train=False, size=config.image_size
    )
    accuracy = functools.partial(
        semi_supervised.test_accuracy,
        images=test_images,
        labels=test_labels,
        device=device,
        low=result.labeled.low,
    )
    semi_supervised.save_classifier(args.discriminator, result.netD, config.model, spec)
    baseline = semi_supervised.labeled_only_baseline(
        config, spec, result.labeled, result.steps, device=device, precision=precision
    )
    scores = {
        "labeled_images": len(result.labeled),
        "test_accuracy": round(accuracy(result.netD), 4),
        "labeled_only_test_accuracy": round(accuracy(baseline), 4),
    }
    print(
        f"semi-supervised D: test accuracy {scores['test_accuracy']:.4f}; the same network on the "
        f"{len(result.labeled)} labeled images alone: {scores['labeled_only_test_accuracy']:.4f}"
    )
    return scores


def _quality_metrics(result) -> dict[str, float]:
    """What scoring during training found: the best step and its score, and what it cost."""
    if not result.evals:
        return {}
    if result.best_step is None:  # every score was NaN (a collapsed generator): the last is kept
        return {"eval_seconds": round(result.eval_seconds, 1)}
    best = next(row for row in result.evals if row[0] == result.best_step)
    return {
        "best_step": result.best_step,
        "best_classifier_fid": round(best[3], 4),
        "eval_seconds": round(result.eval_seconds, 1),
    }


def _record_metrics(
    args,
    result,
    train_images: int,
    generator: torch.nn.Module,
    history: pd.DataFrame,
    extra: dict | None = None,
) -> None:
    """metrics/train.json (numbers only: device and precision are the run's MLflow tags) from
    any family's result, its durations apart in --info (`dvc exp show` leads with scores, not
    seconds), and all of them in MLflow."""
    metrics = {
        "steps": result.steps,
        "epochs": result.epochs,
        "images_seen": result.images_seen,
        "train_images": train_images,
        "train_seconds": round(result.train_seconds, 1),
        "images_per_second": round(result.images_seen / max(result.train_seconds, 1e-9), 1),
        "generator_parameters": count_parameters(generator),
        "final_d_loss": history["d_loss"].iloc[-1],
        "final_g_loss": history["g_loss"].iloc[-1],
        "resumed_from_step": result.resumed_from_step or 0,  # 0: trained without a break
        **(extra or {}),
    }
    write_json(args.metrics, {k: v for k, v in metrics.items() if k not in TIMING})
    write_json(args.info, {k: v for k, v in metrics.items() if k in TIMING})
    tracking.log_metrics(metrics)


def _log_epoch_means(history: pd.DataFrame) -> None:
    """Each column's mean over every epoch as MLflow metrics `epoch/<column>`, stepped by epoch:
    the per-epoch curves the classic lessons plot (log rows are equal-sized, so a plain mean)."""
    by_epoch = history.drop(columns="step").groupby("epoch").mean()
    for epoch, means in by_epoch.iterrows():
        values = {f"epoch/{name}": value for name, value in means.items() if value == value}
        tracking.log_metrics(values, int(epoch))


def _snapshot_staging(args) -> Path:
    """Where snapshots wait until training ends: beside the resume checkpoint, outside the
    stage's outputs (which DVC deletes before it reruns an interrupted stage)."""
    return args.checkpoint.with_name(f"{args.checkpoint.stem}_snapshots")


def _start_run(config: Config, args) -> str:
    run_id = _resumable_run_id(config, args.checkpoint)
    if run_id is None:
        shutil.rmtree(_snapshot_staging(args), ignore_errors=True)  # another run's snapshots
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_id = tracking.new_run(flatten(config), f"{config.model}-{config.dataset}-{stamp}")
    write_run_id(args.mlflow_run, run_id)
    return run_id


def _hooks(args, columns: tuple[str, ...], nrow: int) -> Hooks:
    """Each log row to MLflow (by step) and to the history CSV; each frame to a PNG."""

    def on_log(row: dict[str, float]) -> None:
        step = int(row["step"])
        # NaN: a statistic this loss doesn't have (a critic's accuracy)
        values = {k: v for k, v in row.items() if k not in ("step", "epoch") and v == v}
        tracking.log_metrics(values, step)

    def on_frame(step: int, frame: torch.Tensor) -> None:
        path = args.progress / frame_name(step)
        save_grid(frame, path, nrow=nrow)
        tracking.log_artifact(path, "progress")

    def on_history(rows: list[list[float]]) -> None:
        _write_history(pd.DataFrame(rows, columns=list(columns)), args.history)

    def on_eval(row: dict[str, float], rows: list[list[float]]) -> None:
        step = int(row["step"])
        scores = {k: v for k, v in row.items() if k not in EVAL_BASE_COLUMNS}
        tracking.log_metrics({f"eval/{k}": v for k, v in scores.items() if v == v}, step)
        _write_quality(rows, args.quality, args.fid_history)

    return Hooks(on_log, on_frame, on_history, on_eval)


def _write_quality(rows: list[list[float]], quality: Path, fid_history: Path) -> None:
    """Classifier FID at every scored step; Inception FID at the steps it was computed."""
    table = pd.DataFrame(rows, columns=[*EVAL_BASE_COLUMNS, "classifier_fid", "fid"])
    table["minutes"] = table["minutes"].round(3)
    _write_history(table.drop(columns="fid"), quality)
    _write_history(table.dropna(subset=["fid"]).drop(columns="classifier_fid"), fid_history)


def _write_history(history: pd.DataFrame, path: Path) -> pd.DataFrame:
    history = history.astype({"step": int, "epoch": int})
    with atomic_path(path) as tmp:
        history.to_csv(tmp, index=False)
    return history


def _train_translator(args, config: Config, device: torch.device) -> None:
    """pix2pix / CycleGAN: the same outputs as the noise models, from translate's loop."""
    datasets.verify(config.dataset, args.data, config.download.trusted_md5)
    task = domains.load_domains(config, args.data, train=True, limit=config.train.subset)
    smaller = min(len(task.source), len(task.target))
    if smaller < config.batch_size:
        raise datasets.DataError(
            f"{' -> '.join(task.names)}: {smaller} training images in the smaller domain but "
            f"batch_size = {config.batch_size}: lower batch_size or raise train.subset"
        )
    precision = resolve_precision(config.precision, device)
    run_id = _start_run(config, args)
    with tracking.open_run(run_id, system_metrics=True):
        source = datasets.source_of(config.dataset, config.download.image_folder)
        tracking.log_dataset(config.dataset, datasets.digest(task.source), source)
        tracking.set_tags(
            {
                "device": device.type,
                "precision": precision.name,
                "task": domains.task_of(config),
                "translation": " -> ".join(task.names),
            }
        )
        print(
            f"{config.model}: {' -> '.join(task.names)}, {len(task.source)} source and "
            f"{len(task.target)} target images ({'paired' if task.paired else 'unpaired'})"
        )
        result = translation.train_translator(
            config,
            task,
            device=device,
            precision=precision,
            checkpoint_path=args.checkpoint,
            run_id=run_id,
            hooks=_hooks(
                args,
                history_columns(translation.TranslationStep),
                nrow=translation.n_columns(config.model, task.paired),
            ),
        )
        spec = translation.translator_spec(config, tuple(task.source.shape[1:]))
        snapshots.publish(_snapshot_staging(args), args.snapshots)  # none: snapshots are G's
        for path in (args.generator, args.best_generator):  # no scoring while training: last
            translation.save_translator(path, result.nets, config, spec, task, precision)
        _write_quality([], args.quality, args.fid_history)
        history = _write_history(
            pd.DataFrame(
                result.history, columns=list(history_columns(translation.TranslationStep))
            ),
            args.history,
        )
        _record_metrics(
            args,
            result,
            len(task.source),
            result.nets["G"],
            history,
            {"final_recon_l1": history["recon_l1"].iloc[-1]},
        )
        _log_epoch_means(history)
        tracking.log_translator(
            copy.deepcopy(result.nets["G"]).cpu().float(),
            tuple(task.source.shape[1:]),
            registered_model_name(config),
            {"kind": "translator", "model": config.model, "domains": list(task.names)},
        )
        tracking.log_artifact(args.history)
        args.checkpoint.unlink(missing_ok=True)
        print(f"trained {result.steps} steps; {tracking.run_url(run_id)}")


if __name__ == "__main__":
    run_stage(main)
