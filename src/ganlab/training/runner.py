"""The one training runner: epochs of steps, logging, the NaN guard, frames, checkpoints, resume.

A GAN family is a `Step` (noise-to-image GAN, pix2pix, CycleGAN): it owns its networks and
what one update does. Everything around the updates exists once, here: the running means
between log rows, the per-epoch progress frames, the time budget, and checkpoints holding
everything a bit-exact resume needs (weights, optimizers, RNG states, data order, history).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from ganlab import checkpoint
from ganlab.config import Config
from ganlab.errors import GanlabError
from ganlab.snapshots import Snapshot
from ganlab.training import distributed

BASE_COLUMNS = ("step", "epoch")
# the adversarial statistics every family's step starts its columns with (its own follow):
# D's loss, G's loss, D's mean output on real images, on fakes in D's step and in G's step
ADVERSARIAL_COLUMNS = ("d_loss", "g_loss", "d_real", "d_fake_d_step", "d_fake_g_step")
EVAL_BASE_COLUMNS = ("step", "epoch", "minutes")  # minutes of training, evaluation excluded
PACKAGE = Path(__file__).resolve().parents[1]
# the code whose change changes what training does: its networks, updates, data and pixels
TRAINING_CODE = ("models", "training", "data", "config.py", "device.py", "images.py")


@dataclass(frozen=True)
class Stats:
    """One update's statistics: one tensor (a single add into the running sums, no host sync)
    and the history column each value belongs to, so that none is wired by position."""

    names: tuple[str, ...]
    values: torch.Tensor

    @classmethod
    def of(cls, **values: torch.Tensor) -> Stats:
        """Named 0-d tensors as one row (call it under no_grad)."""
        row = torch.stack([value.detach().reshape(()) for value in values.values()])
        return cls(tuple(values), row)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.values[self.names.index(name)]


class NonFiniteLossError(GanlabError, RuntimeError):
    """A loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


@dataclass
class Hooks:
    """Side effects the runner triggers; the stage wires them to files and MLflow."""

    on_log: Callable[[dict[str, float]], None] = lambda row: None
    # a progress frame and the step it shows: 0 (before training), then after every epoch
    # or every render.frame_every steps, and at the end
    on_frame: Callable[[int, torch.Tensor], None] = lambda step, frame: None
    # the whole history so far, after every new row and on resume: a curve survives a kill
    on_history: Callable[[list[list[float]]], None] = lambda history: None
    # each quality row (EVAL_BASE_COLUMNS + the evaluator's columns), and all of them so far
    on_eval: Callable[[dict[str, float], list[list[float]]], None] = lambda row, evals: None
    # the networks after every epoch (train.snapshot_epochs) or every N steps (snapshot_every)
    on_snapshot: Callable[[Snapshot], None] = lambda snapshot: None


@dataclass
class Progress:
    """Where training is: all of it goes into the checkpoint, so a resume is bit-exact."""

    step: int = 0  # D updates (one batch each); G updates every n_critic steps
    epoch: int = 0  # completed epochs
    batch_in_epoch: int = 0
    history: list[list[float]] = field(default_factory=list)
    frames: list[torch.Tensor] = field(default_factory=list)
    frame_steps: list[int] = field(default_factory=list)  # the step each frame shows
    minute_snapshots: int = 0  # train.snapshot_minutes' snapshots kept so far
    elapsed: float = 0.0
    # how much of the run is done (steps planned, or train.max_minutes when that ends it
    # first), as of this step: what lr schedules follow
    run_fraction: float = 0.0
    # Running sums of the step's statistics since the last log row, kept on the device so
    # the loop never waits for the host.
    sums: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    d_updates: int = 0
    g_updates: int = 0
    # quality during training (an Evaluator): its rows and the best generator so far
    evals: list[list[float]] = field(default_factory=list)
    best_step: int = -1
    best_score: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    eval_seconds: float = 0.0


class Step(Protocol):
    """What a GAN family brings to the runner."""

    columns: tuple[str, ...]  # the step's statistics (history columns): d_loss, g_loss first
    d_columns: tuple[str, ...]  # those that are means over D updates (the rest: over G updates)
    extra_columns: tuple[str, ...]  # values read at each log row (log_extras), e.g. the lr
    steps_per_epoch: int
    local_random: distributed.LocalRandom  # this rank's own stream under DDP (in checkpoints)

    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def train_mode(self, on: bool) -> None: ...
    def epoch_order(self, data_order: torch.Generator) -> Any: ...
    def update(self, progress: Progress, index: int, order: Any) -> None:
        """One training step on batch `index` of the epoch's `order`; adds to progress.sums."""

    def log_extras(self) -> list[float]: ...
    def end_epoch(self) -> None: ...
    def frame(self) -> torch.Tensor: ...
    def snapshot(self) -> dict[str, Any]:
        """The networks' weights worth keeping (train.snapshot_epochs, snapshot_every; the
        noise-to-image family's: translators refuse those params)."""


class Evaluator(Protocol):
    """Scores the generator while it trains (ganlab.training.monitor.Monitor)."""

    columns: tuple[str, ...]  # the first one picks the best generator: lower is better

    def due(self, step: int) -> bool: ...
    def evaluate(self, step: int, final: bool) -> list[float]: ...
    def state(self) -> dict[str, torch.Tensor]:
        """A copy of the scored generator's weights, kept when its score is the best so far."""


@dataclass
class RunResult:
    history: list[list[float]]
    frames: list[torch.Tensor]
    steps: int
    epochs: int  # epochs run; the last one partial when train.max_minutes ran out
    train_seconds: float
    resumed_from_step: int | None = None
    evals: list[list[float]] = field(default_factory=list)
    best_step: int | None = None  # None: nothing was scored, the last generator is the best
    best_state: dict[str, torch.Tensor] | None = None
    eval_seconds: float = 0.0
    frame_steps: list[int] = field(default_factory=list)  # the step each frame shows


def code_digest(parts: tuple[str, ...] = TRAINING_CODE, package: Path = PACKAGE) -> str:
    """A digest of these parts of the ganlab package (folders and modules), file by file."""
    digest = hashlib.sha256()
    for part in parts:
        files = sorted((package / part).glob("*.py")) if (package / part).is_dir() else []
        for path in files or [package / part]:
            digest.update(str(path.relative_to(package)).encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def run_fingerprint(config: Config, *data: torch.Tensor | None) -> str:
    """What a checkpoint resumes only under: the params that shape training, the training code
    and the training data's bytes (whichever mirror or image_folder they came from). A run
    interrupted under other code, or on other images, starts afresh: dvc.lock would otherwise
    record new code or data for a model trained half on the old."""
    digest = hashlib.sha256(f"{config.training_fingerprint()} {code_digest()}".encode())
    for tensor in data:
        if tensor is None:
            digest.update(b"none")
            continue
        digest.update(f"{tuple(tensor.shape)} {tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def planned_steps(config: Config, steps_per_epoch: int) -> int:
    """train.max_steps when set (as many epochs as that takes), else config.epochs' worth."""
    return config.train.max_steps or steps_per_epoch * config.epochs


def history_columns(step: Step) -> tuple[str, ...]:
    """The columns of a step's history rows (metrics/train_history.csv)."""
    return (*BASE_COLUMNS, *step.columns, *step.extra_columns)


def eval_columns(evaluator: Evaluator) -> tuple[str, ...]:
    """The columns of the quality rows an evaluator adds to RunResult.evals."""
    return (*EVAL_BASE_COLUMNS, *evaluator.columns)


def add_stats(progress: Progress, step: Step, stats: Stats) -> None:
    """Add an update's statistics to the running sums, each into its own column."""
    progress.sums[[step.columns.index(name) for name in stats.names]] += stats.values


def means_since_log(progress: Progress, step: Step, checkpoint_path: Path) -> dict[str, float]:
    """The mean of each statistic since the last log row (by column name: over D's updates for
    step.d_columns, over G's for the rest); stop on a NaN or infinite loss."""
    means = {}
    for name, total in zip(step.columns, progress.sums.tolist(), strict=True):
        count = progress.d_updates if name in step.d_columns else progress.g_updates
        means[name] = total / count if count else math.nan
    for name in ("d_loss", "g_loss"):
        count = progress.d_updates if name in step.d_columns else progress.g_updates
        if count and not math.isfinite(means[name]):
            raise NonFiniteLossError(
                f"{name} became {means[name]} by step {progress.step} (epoch "
                f"{progress.epoch + 1}); training stopped and the last good checkpoint "
                f"({checkpoint_path}) is kept. Try a lower lr or precision: fp32."
            )
    return means


def resume_progress(
    checkpoint_path: Path, fingerprint: str, run_id: str, step: Step, data_order: torch.Generator
) -> Progress | None:
    """This run's interrupted training (nets, data order, RNGs) from its checkpoint, or None
    when there is no checkpoint of this run with these params and training starts afresh."""
    if not checkpoint_path.is_file():
        return None
    state = checkpoint.load(checkpoint_path)
    if state["fingerprint"] != fingerprint or state["run_id"] != run_id:
        return None
    step.load_state_dict(state["nets"])
    progress = Progress(**state["progress"])
    data_order.set_state(state["data_order_at_epoch_start"])
    checkpoint.set_rng_state(state["rng"])
    step.local_random.load(state.get("local_rng"))
    return progress


class Runner:
    """Runs a Step for config.epochs (or train.max_minutes) with everything around it."""

    def __init__(
        self,
        step: Step,
        config: Config,
        device: torch.device,
        checkpoint_path: Path,
        run_id: str,
        hooks: Hooks | None = None,
        world: distributed.World | None = None,
        evaluator: Evaluator | None = None,
        *,
        fingerprint: str,
    ) -> None:
        self.step, self.config, self.device = step, config, device
        self.evaluator = evaluator if world is None or world.is_main else None
        self.checkpoint_path, self.run_id = checkpoint_path, run_id
        self.hooks = hooks or Hooks()
        self.world = world or distributed.World()
        self.fingerprint = fingerprint  # run_fingerprint of the params, code and data
        self.data_order = torch.Generator().manual_seed(config.seed)
        self.budget = 60 * config.train.max_minutes if config.train.max_minutes else math.inf
        if step.steps_per_epoch == 0:
            raise ValueError(
                f"batch_size = {config.batch_size} is more than the training images: expected "
                "at least one full batch per epoch"
            )
        self.total_steps = planned_steps(config, step.steps_per_epoch)
        self.epochs = math.ceil(self.total_steps / step.steps_per_epoch)

    def run(self, desc: str = "train") -> RunResult:
        saved = resume_progress(
            self.checkpoint_path, self.fingerprint, self.run_id, self.step, self.data_order
        )
        resumed_from = saved.step if saved else None
        self.progress = saved or Progress(sums=torch.zeros(len(self.step.columns)))
        self.progress.sums = self.progress.sums.to(self.device)
        for step, frame in zip(self.progress.frame_steps, self.progress.frames, strict=True):
            self.hooks.on_frame(step, frame)  # replay saved frames
        if saved:
            self.hooks.on_history(self.progress.history)
            if self.progress.evals and self.evaluator is not None:
                row = dict(zip(eval_columns(self.evaluator), self.progress.evals[-1], strict=True))
                self.hooks.on_eval(row, self.progress.evals)
        self.started = self.last_checkpoint = time.perf_counter()
        self.shared_clock = (-1, 0.0)  # (step, rank 0's seconds of training) under DDP
        bar = tqdm(
            total=self.total_steps,
            initial=self.progress.step,
            desc=desc,
            unit="step",
            dynamic_ncols=True,
            disable=not self.world.is_main,
        )
        if not self.progress.frames:
            self._frame()  # what G draws before training: step 0
        self.step.train_mode(True)
        while self.progress.epoch < self.epochs:
            if self._run_epoch(bar):
                break
        bar.close()
        self._evaluate(final=True)
        self.step.train_mode(False)
        progress = self.progress
        return RunResult(
            history=progress.history,
            frames=progress.frames,
            frame_steps=progress.frame_steps,
            steps=progress.step,
            epochs=progress.epoch,
            train_seconds=self._elapsed(),
            resumed_from_step=resumed_from,
            evals=progress.evals,
            best_step=progress.best_step if progress.best_state is not None else None,
            best_state=progress.best_state,
            eval_seconds=progress.eval_seconds,
        )

    def _run_epoch(self, bar: tqdm) -> bool:
        """One (possibly resumed) epoch; True when the time budget ran out."""
        progress = self.progress
        epoch_start_order = self.data_order.get_state()
        order = self.step.epoch_order(self.data_order)
        for index in range(progress.batch_in_epoch, self.step.steps_per_epoch):
            progress.run_fraction = self._run_fraction()
            self.step.update(progress, index, order)
            progress.step += 1
            progress.batch_in_epoch = index + 1
            bar.update(1)
            if progress.step % self.config.train.log_every == 0 and progress.g_updates:
                self._log_row()
                last = dict(zip(history_columns(self.step), progress.history[-1], strict=True))
                bar.set_postfix(d_loss=f"{last['d_loss']:.3f}", g_loss=f"{last['g_loss']:.3f}")
            last = self._out_of_budget()
            if self.evaluator is not None and (last or self.evaluator.due(progress.step)):
                self._evaluate(final=last)  # the final row has every score (Inception FID too)
            if self._minute_snapshot_due():  # before a budget's end: its last minute counts
                self._snapshot(epoch_end=False, minutes=self._minute_snapshot_at())
                progress.minute_snapshots += 1
            if last:
                break
            every = self.config.render.frame_every
            if every is not None and progress.step % every == 0:
                self._frame()
            every = self.config.train.snapshot_every
            if every is not None and progress.step % every == 0:
                self._snapshot(epoch_end=False)
            if progress.batch_in_epoch < self.step.steps_per_epoch and self._checkpoint_due():
                self._save_checkpoint(epoch_start_order)
        self._log_row()
        self.step.end_epoch()
        progress.epoch += 1
        progress.batch_in_epoch = 0
        by_epoch = self.config.render.frame_every is None
        if progress.frame_steps[-1] != progress.step and (by_epoch or self._out_of_budget()):
            self._frame()  # after every epoch (or only the last step, with frame_every)
        if self.config.train.snapshot_epochs:
            self._snapshot(epoch_end=True)
        self._save_checkpoint(self.data_order.get_state())
        return self._out_of_budget()  # train.max_minutes or max_steps: a partial last epoch

    def _frame(self) -> None:
        """The step's fixed-noise (or fixed-input) grid, kept and handed to on_frame."""
        progress = self.progress
        progress.frames.append(self.step.frame())
        progress.frame_steps.append(progress.step)
        self.hooks.on_frame(progress.step, progress.frames[-1])

    def _snapshot(self, epoch_end: bool, minutes: float | None = None) -> None:
        progress = self.progress
        epoch = progress.epoch if epoch_end else progress.epoch + 1
        state = self.step.snapshot()
        snapshot = Snapshot(progress.step, epoch, epoch_end, state, progress.history, minutes)
        self.hooks.on_snapshot(snapshot)

    def _minute_snapshot_at(self) -> float:
        """The minutes of training the next train.snapshot_minutes snapshot is taken at."""
        return self.config.train.snapshot_minutes * (self.progress.minute_snapshots + 1)

    def _minute_snapshot_due(self) -> bool:
        if self.config.train.snapshot_minutes is None:
            return False
        return self._clock() >= 60 * self._minute_snapshot_at()

    def _run_fraction(self) -> float:
        """Steps done over steps planned, or minutes over train.max_minutes when more: by steps
        alone (and so the same on every machine and resume) unless the clock ends the run."""
        by_steps = self.progress.step / self.total_steps
        if self.budget == math.inf:
            return min(1.0, by_steps)
        return min(1.0, max(by_steps, self._clock() / self.budget))

    def _out_of_budget(self) -> bool:
        if self.progress.step >= self.total_steps:
            return True
        return self.budget != math.inf and self._clock() >= self.budget

    def _elapsed(self) -> float:
        """Seconds of training so far in this process (scoring time left out)."""
        return self.progress.elapsed + time.perf_counter() - self.started

    def _clock(self) -> float:
        """Seconds of training as rank 0 counts them, on every rank (read once a step): the
        time budget, the lr decay by the clock and the minute snapshots then act at the same
        step in every process. Each process's own clock would not do: rank 0 alone spends
        time scoring and leaves it out, so the others would stop first and leave it waiting
        in an all-reduce."""
        if not self.world.distributed:
            return self._elapsed()
        step = self.progress.step
        if self.shared_clock[0] != step:
            self.shared_clock = (step, distributed.from_main(self._elapsed(), self.world))
        return self.shared_clock[1]

    def _evaluate(self, final: bool) -> None:
        """One quality row; keeps the generator when its score is the best so far.

        Evaluation time is not training time: it is kept out of train.max_minutes."""
        progress, evaluator = self.progress, self.evaluator
        if evaluator is None:
            return
        if final and progress.evals and progress.evals[-1][0] == progress.step:
            return  # the last step was scored already
        started = time.perf_counter()
        minutes = self._elapsed() / 60
        values = evaluator.evaluate(progress.step, final)
        epoch = progress.epoch + (progress.batch_in_epoch > 0 or progress.epoch == 0)
        row = [float(progress.step), float(epoch), minutes, *values]
        progress.evals.append(row)
        if values[0] < progress.best_score:
            progress.best_step, progress.best_score = progress.step, values[0]
            progress.best_state = evaluator.state()
        seconds = time.perf_counter() - started
        self.started += seconds
        progress.eval_seconds += seconds
        self.hooks.on_eval(dict(zip(eval_columns(evaluator), row, strict=True)), progress.evals)

    def _log_row(self) -> None:
        progress = self.progress
        if progress.g_updates == 0:  # with n_critic > 1, wait for a G update to report
            return
        distributed.mean_(progress.sums, self.world)  # averages over ranks; one sync per row
        means = means_since_log(progress, self.step, self.checkpoint_path)
        extras = self.step.log_extras()
        row = [float(progress.step), float(progress.epoch + 1), *means.values(), *extras]
        progress.history.append(row)
        self.hooks.on_log(dict(zip(history_columns(self.step), row, strict=True)))
        self.hooks.on_history(progress.history)
        progress.sums.zero_()
        progress.d_updates = progress.g_updates = 0

    def _checkpoint_due(self) -> bool:
        minutes = self.config.train.checkpoint_minutes
        now = time.perf_counter()
        by_time = minutes is not None and now - self.last_checkpoint >= minutes * 60
        return by_time or self.progress.step % self.config.train.checkpoint_every == 0

    def _save_checkpoint(self, epoch_start_order: torch.Tensor) -> None:
        # never overwrite a good checkpoint with NaNs
        means_since_log(self.progress, self.step, self.checkpoint_path)
        local_states = self.step.local_random.gather()  # every rank's own stream, under DDP
        if self.world.is_main:
            progress = dataclasses.asdict(self.progress) | {"elapsed": self._elapsed()}
            state = {
                "fingerprint": self.fingerprint,
                "run_id": self.run_id,
                "nets": self.step.state_dict(),
                "progress": progress,
                "data_order_at_epoch_start": epoch_start_order,
                "rng": checkpoint.rng_state(),
            }
            if local_states is not None:
                state["local_rng"] = local_states
            checkpoint.save(self.checkpoint_path, state)
        self.last_checkpoint = time.perf_counter()
