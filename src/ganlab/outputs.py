"""What a training run leaves behind, for every family: its MLflow run, the history and quality
CSVs, metrics/train.json (durations apart), the per-epoch means, the snapshots, and the end of
its resume checkpoint. The train stage trains; everything after the last step happens here.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ganlab import checkpoint, snapshots, tracking
from ganlab.config import Config, flatten
from ganlab.figures import frame_name
from ganlab.images import save_grid
from ganlab.io import atomic_path, write_json
from ganlab.models import count_parameters
from ganlab.training.runner import EVAL_BASE_COLUMNS, Hooks, RunResult

TIMING = ("train_seconds", "images_per_second", "eval_seconds")  # the info file, not metrics


@dataclass(frozen=True)
class TrainOutputs:
    """The train stage's files (dvc.yaml's paths; each one the stage's --option)."""

    generator: Path = field(metadata={"help": "the last generator"})
    best_generator: Path = field(metadata={"help": "the best-scored generator"})
    snapshots: Path = field(metadata={"help": "folder of kept G and D snapshots"})
    discriminator: Path = field(metadata={"help": "the semi-supervised GAN's D (its classifier)"})
    mlflow_run: Path = field(metadata={"help": "MLflow run id JSON"})
    progress: Path = field(metadata={"help": "folder of progress frames"})
    history: Path = field(metadata={"help": "loss history CSV"})
    metrics: Path = field(metadata={"help": "training metrics JSON"})
    info: Path = field(metadata={"help": "training durations JSON"})
    checkpoint: Path = field(metadata={"help": "resume checkpoint (outside DVC's outputs)"})
    quality: Path = field(metadata={"help": "classifier FID during training CSV"})
    fid_history: Path = field(metadata={"help": "Inception FID during training CSV"})

    @property
    def staging(self) -> Path:
        """Where snapshots wait until training ends: beside the resume checkpoint, outside the
        stage's outputs (which DVC deletes before it reruns an interrupted stage)."""
        return self.checkpoint.with_name(f"{self.checkpoint.stem}_snapshots")


def resumable_run_id(checkpoint_path: Path, fingerprint: str) -> str | None:
    """The MLflow run of an interrupted run with the same fingerprint (training params, code
    and data: ganlab.training.runner.run_fingerprint), if there is one."""
    if not checkpoint_path.is_file():
        return None
    state = checkpoint.load(checkpoint_path)
    if state.get("fingerprint") != fingerprint:
        print(f"{checkpoint_path} was made with other params, code or data; starting afresh")
        return None
    print(f"resuming from {checkpoint_path} at step {state['progress']['step']}")
    return state["run_id"]


def start_run(config: Config, paths: TrainOutputs, fingerprint: str) -> str:
    """The interrupted run's MLflow run when training resumes (the same `fingerprint`), else a
    new one; its id saved."""
    run_id = resumable_run_id(paths.checkpoint, fingerprint)
    if run_id is None:
        shutil.rmtree(paths.staging, ignore_errors=True)  # another run's snapshots
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_id = tracking.new_run(flatten(config), f"{config.model}-{config.dataset}-{stamp}")
    tracking.write_run_id(paths.mlflow_run, run_id)
    return run_id


def registered_model_name(config: Config) -> str:
    """One registry entry per dataset and model family: versions are its training runs."""
    return f"ganlab-{config.dataset}-{config.model}"


def tracking_hooks(paths: TrainOutputs, columns: tuple[str, ...], nrow: int) -> Hooks:
    """Each log row to MLflow (by step) and to the history CSV; each frame to a PNG."""

    def on_log(row: dict[str, float]) -> None:
        # NaN: a statistic this loss doesn't have (a critic's accuracy)
        values = {k: v for k, v in row.items() if k not in ("step", "epoch") and v == v}
        tracking.log_metrics(values, int(row["step"]))

    def on_frame(step: int, frame: torch.Tensor) -> None:
        path = paths.progress / frame_name(step)
        save_grid(frame, path, nrow=nrow)
        tracking.log_artifact(path, "progress")

    def on_history(rows: list[list[float]]) -> None:
        write_history(pd.DataFrame(rows, columns=list(columns)), paths.history)

    def on_eval(row: dict[str, float], rows: list[list[float]]) -> None:
        scores = {k: v for k, v in row.items() if k not in EVAL_BASE_COLUMNS}
        tracking.log_metrics(
            {f"eval/{k}": v for k, v in scores.items() if v == v}, int(row["step"])
        )
        write_quality(rows, paths)

    return Hooks(on_log, on_frame, on_history, on_eval)


def write_history(history: pd.DataFrame, path: Path) -> pd.DataFrame:
    history = history.astype({"step": int, "epoch": int})
    with atomic_path(path) as tmp:
        history.to_csv(tmp, index=False)
    return history


def write_quality(rows: list[list[float]], paths: TrainOutputs) -> None:
    """Classifier FID at every scored step (scores only: a resumed run writes the same bytes
    as an uninterrupted one; the minutes are in the info file); Inception FID at the steps it
    was computed, by minutes of training (its plot's x axis)."""
    table = pd.DataFrame(rows, columns=[*EVAL_BASE_COLUMNS, "classifier_fid", "fid"])
    table["minutes"] = table["minutes"].round(3)
    write_history(table.drop(columns=["fid", "minutes"]), paths.quality)
    write_history(table.dropna(subset=["fid"]).drop(columns="classifier_fid"), paths.fid_history)


def quality_metrics(result: RunResult) -> dict[str, float]:
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


def record_metrics(
    paths: TrainOutputs,
    metrics: dict[str, float],
    eval_minutes: dict[str, float] | None = None,
    ran_on: dict[str, str] | None = None,
) -> None:
    """metrics/train.json (numbers only), its durations apart in the info file (`dvc exp show`
    leads with scores, not seconds) with the minutes of training at each scored step and what
    the run ran on (device, precision: as every stage's info file says how its numbers were
    made), and the numbers in MLflow (where device and precision are the run's tags)."""
    write_json(paths.metrics, {k: v for k, v in metrics.items() if k not in TIMING})
    timing = {k: v for k, v in metrics.items() if k in TIMING}
    minutes = {"eval_minutes": eval_minutes} if eval_minutes else {}
    write_json(paths.info, (ran_on or {}) | timing | minutes)
    tracking.log_metrics(metrics)


def log_epoch_means(history: pd.DataFrame) -> None:
    """Each column's mean over every epoch as MLflow metrics `epoch/<column>`, stepped by epoch:
    the per-epoch curves the classic lessons plot (log rows weighted by the steps they cover)."""
    by_epoch = snapshots.per_epoch_means(history).set_index("epoch")
    for epoch, means in by_epoch.iterrows():
        values = {f"epoch/{name}": value for name, value in means.items() if value == value}
        tracking.log_metrics(values, int(epoch))


def finish(
    paths: TrainOutputs,
    result: RunResult,
    *,
    columns: tuple[str, ...],
    generator: torch.nn.Module,
    train_images: int,
    images_seen: int,
    extra: dict[str, float],
    ran_on: dict[str, str],
    log_model: Callable[[], None],
) -> None:
    """Everything after the last step (the generator files are the family's to write first):
    snapshots published, CSVs and metrics written, the model logged, the checkpoint removed.
    `ran_on`: the device and precision the run trained on, for the info file."""
    kept = snapshots.publish(paths.staging, paths.snapshots)
    history = write_history(pd.DataFrame(result.history, columns=list(columns)), paths.history)
    final = {"final_d_loss": history["d_loss"].iloc[-1], "final_g_loss": history["g_loss"].iloc[-1]}
    if "recon_l1" in history:  # translators: how far their outputs are from the targets
        final["final_recon_l1"] = history["recon_l1"].iloc[-1]
    metrics = {
        "steps": result.steps,
        "epochs": result.epochs,
        "images_seen": images_seen,
        "train_images": train_images,
        "train_seconds": round(result.train_seconds, 1),
        "images_per_second": round(images_seen / max(result.train_seconds, 1e-9), 1),
        "generator_parameters": count_parameters(generator),
        **final,
        "resumed_from_step": result.resumed_from_step or 0,  # 0: trained without a break
        "snapshots": len(kept),
        **quality_metrics(result),
        **extra,
    }
    eval_minutes = {str(int(row[0])): round(row[2], 3) for row in result.evals}
    record_metrics(paths, metrics, eval_minutes, ran_on)
    log_epoch_means(history)
    if not result.evals:  # no scoring while training: empty quality tables
        write_quality([], paths)
    log_model()
    tracking.log_artifact(paths.history)
    paths.checkpoint.unlink(missing_ok=True)
