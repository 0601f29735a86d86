"""G and D kept after every epoch (or every N steps or minutes), and the choice of one to evaluate.

The classic lab saves both networks after every epoch and later loads the epoch with the
lowest training loss. Snapshots are written while training to a staging folder beside the
resume checkpoint (DVC deletes a stage's outputs before it reruns it, so an interrupted run's
snapshots must live elsewhere), then moved into the stage's output folder at the end. Each
file is a generator file (sampling loads it as such) plus D and the epoch's mean statistics.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ganlab import checkpoint
from ganlab.errors import GanlabError

EPOCH_GLOB = "epoch_*.pt"


@dataclass
class Snapshot:
    """The networks at one step, as the training runner hands them out."""

    step: int
    epoch: int  # the epoch it ends (epoch_end) or is in, counted from 1
    epoch_end: bool
    state: dict[str, Any]  # the Step's snapshot(): state dicts by network ("G", "D")
    history: list[list[float]]  # every log row so far: the epoch's means come from it
    minutes: float | None = None  # train.snapshot_minutes' snapshots: the training minutes


class SnapshotError(GanlabError, FileNotFoundError):
    """The generator evaluate.checkpoint asks for is not there."""


def file_name(snapshot: Snapshot) -> str:
    """epoch_NNN.pt for the end of an epoch, minute_NNNN.NN.pt for every-N-minutes ones,
    step_NNNNNNN.pt for every-N-steps ones."""
    if snapshot.minutes is not None:
        return f"minute_{snapshot.minutes:07.2f}.pt"
    if snapshot.epoch_end:
        return f"epoch_{snapshot.epoch:03d}.pt"
    return f"step_{snapshot.step:07d}.pt"


def per_epoch_means(history: pd.DataFrame) -> pd.DataFrame:
    """Each statistic's mean per epoch (one row per epoch, its `epoch` column first), every log
    row weighted by the steps it covers: rows come every train.log_every steps plus a shorter
    one at each epoch's end, and a row of 3 steps must not count as much as one of 20. A
    statistic's NaN rows (e.g. D's accuracy under a critic's loss) are left out of its mean."""
    steps = history["step"].diff().fillna(history["step"])  # the first row covers steps 0..
    values = history.drop(columns=["step", "epoch"])
    weights = values.notna().mul(steps, axis=0)
    weighted = values.mul(steps, axis=0).where(values.notna())
    by_epoch = history["epoch"]
    means = weighted.groupby(by_epoch).sum(min_count=1) / weights.groupby(by_epoch).sum()
    return means.reset_index()


def epoch_means(history: list[list[float]], columns: tuple[str, ...], epoch: int) -> dict:
    """The step-weighted mean of each statistic over the epoch's log rows so far (NaN columns
    left out)."""
    means = per_epoch_means(pd.DataFrame(history, columns=list(columns))).set_index("epoch")
    return {name: float(value) for name, value in means.loc[epoch].items() if value == value}


def save(
    snapshot: Snapshot, folder: Path, generator_info: dict[str, Any], columns: tuple[str, ...]
) -> Path:
    """One snapshot as a generator file with D and the epoch's means; its path."""
    path = folder / file_name(snapshot)
    checkpoint.save(
        path,
        generator_info
        | {
            "state_dict": snapshot.state["G"],
            "netD": snapshot.state["D"],
            "step": snapshot.step,
            "epoch": snapshot.epoch,
            "epoch_means": epoch_means(snapshot.history, columns, snapshot.epoch),
        }
        | ({"minutes": snapshot.minutes} if snapshot.minutes is not None else {}),
    )
    return path


def publish(staging: Path, out: Path) -> list[Path]:
    """Move the staged snapshots into the stage's output folder (emptied first)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    moved = []
    for path in sorted(staging.glob("*.pt")) if staging.is_dir() else []:
        moved.append(Path(shutil.move(path, out / path.name)))
    return moved


def choose(folder: Path, how: str, epoch: int | None = None) -> Path:
    """The per-epoch snapshot `how` picks: lowest_g_loss (the lowest mean G loss over its
    epoch, the first such epoch on a tie) or epoch (evaluate.epoch's)."""
    if how == "epoch":
        path = folder / f"epoch_{epoch:03d}.pt"
        if not path.is_file():
            raise SnapshotError(
                f"{path} is missing: evaluate.epoch = {epoch} expects the snapshot of that epoch "
                f"(train.snapshot_epochs: true; the epochs kept are {kept_epochs(folder)})"
            )
        return path
    if how != "lowest_g_loss":
        raise ValueError(f"unknown choice {how!r}: expected 'lowest_g_loss' or 'epoch'")
    candidates = sorted(folder.glob(EPOCH_GLOB))
    if not candidates:
        raise SnapshotError(
            f"no {EPOCH_GLOB} in {folder}: evaluate.checkpoint = 'lowest_g_loss' picks among the "
            "per-epoch snapshots (train.snapshot_epochs: true)"
        )
    losses = {path: checkpoint.load(path)["epoch_means"]["g_loss"] for path in candidates}
    return min(candidates, key=lambda path: losses[path])


def kept_epochs(folder: Path) -> list[int]:
    return [int(path.stem.split("_")[1]) for path in sorted(folder.glob(EPOCH_GLOB))]


def generator_path(
    checkpoint: str, epoch: int | None, last: Path, best: Path, folder: Path
) -> Path:
    """The generator file evaluate.checkpoint names: best (the best-scored while training),
    last, or a per-epoch snapshot (lowest_g_loss, epoch)."""
    if checkpoint in ("lowest_g_loss", "epoch"):
        return choose(folder, checkpoint, epoch)
    path = best if checkpoint == "best" else last
    if not path.is_file():
        raise SnapshotError(f"{path} is missing: expected the train stage's {checkpoint} generator")
    return path
