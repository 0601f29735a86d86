"""The one training loop for noise-to-image GANs.

GAN variants are params (model, loss, optimizers, tricks), never copies of this
loop. The loop keeps the data on the device as uint8 and scales batches on the
fly, reads losses back from the device only at log intervals, and checkpoints
everything a bit-exact resume needs (weights, optimizers, RNG states, data order).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ganlab import checkpoint, distributed
from ganlab.augment import diff_augment
from ganlab.config import Config
from ganlab.data import DATASETS
from ganlab.device import Precision
from ganlab.losses import LOSSES
from ganlab.models import ModelSpec, build_models
from ganlab.models.conditional import discriminate, generate
from ganlab.regularizers import clip_weights_, gradient_penalty, r1_penalty

HISTORY_COLUMNS = ("step", "epoch", "d_loss", "g_loss", "d_x", "d_g_z1", "d_g_z2")
N_FIXED_SAMPLES = 64


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


@dataclass
class Hooks:
    """Side effects the loop triggers; the stage wires them to files and MLflow."""

    on_log: Callable[[dict[str, float]], None] = lambda row: None
    on_epoch: Callable[[int, torch.Tensor], None] = lambda epoch, samples: None


@dataclass
class TrainResult:
    netG: nn.Module
    history: list[list[float]]
    frames: list[torch.Tensor]
    steps: int
    epochs: int  # epochs run; the last one partial when train.max_minutes ran out
    images_seen: int
    train_seconds: float
    resumed_from_step: int | None = None


def model_spec(config: Config, image_shape: tuple[int, int, int], n_classes: int) -> ModelSpec:
    """The models' shape from params, the data's image shape and its number of classes."""
    return ModelSpec(
        config.z_dim,
        image_shape,
        config.ngf,
        config.ndf,
        config.dropout,
        config.d_norm,
        config.minibatch_std,
        config.spectral_norm,
        config.conditional,
        n_classes if config.conditional != "none" else 0,
    )


def fixed_labels(n: int, n_classes: int, device: torch.device) -> torch.Tensor | None:
    """Labels 0, 1, ..., K-1, 0, 1, ...: rows of a K-wide grid show one class per column."""
    return torch.arange(n, device=device) % n_classes if n_classes else None


def sample_latent(
    n: int, z_dim: int, kind: str, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z ~ N(0, I), or U(-1, 1) as in the classic fully-connected GAN lab."""
    if kind == "uniform":
        return torch.rand(n, z_dim, device=device, generator=generator) * 2 - 1
    return torch.randn(n, z_dim, device=device, generator=generator)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 pixels, rounded as torchvision's save_image does."""
    return ((images.float() + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)


def scale_batch(batch: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> floats in [-1, 1], the range of G's tanh output."""
    return batch.float().div_(127.5).sub_(1.0)


def optimizer_for(
    name: str, net: nn.Module, lr: float, betas: tuple[float, float]
) -> torch.optim.Optimizer:
    parameters = [p for p in net.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, foreach=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, foreach=True)
    return torch.optim.Adam(parameters, lr=lr, betas=betas, foreach=True)


def make_optimizers(
    config: Config, netG: nn.Module, netD: nn.Module
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """g_optimizer at lr for G, d_optimizer at d_lr (or lr) for D; Adam uses (beta1, beta2)."""
    betas = (config.beta1, config.beta2)
    return (
        optimizer_for(config.g_optimizer, netG, config.lr, betas),
        optimizer_for(config.d_optimizer, netD, config.d_lr or config.lr, betas),
    )


def _is_conv(net: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in net.modules())


@dataclass
class Nets:
    """The networks and everything that updates them."""

    netG: nn.Module
    netD: nn.Module
    optG: torch.optim.Optimizer
    optD: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    netG_ema: nn.Module | None = None  # exponential moving average of G, used for evaluation
    # What the training step calls: DDP wrappers under torchrun, else netG and netD themselves.
    stepG: nn.Module | None = None
    stepD: nn.Module | None = None

    def __post_init__(self) -> None:
        self.stepG = self.stepG or self.netG
        self.stepD = self.stepD or self.netD

    def parts(self) -> dict[str, Any]:
        names = ("netG", "netD", "optG", "optD", "scaler", "netG_ema")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def state_dict(self) -> dict[str, Any]:
        return {name: part.state_dict() for name, part in self.parts().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in self.parts().items():
            part.load_state_dict(state[name])

    @property
    def generator(self) -> nn.Module:
        """The generator to sample from: the EMA one when it is kept."""
        return self.netG_ema if self.netG_ema is not None else self.netG


@torch.no_grad()
def update_ema_(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * net for weights; buffers (BatchNorm stats) copied."""
    torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), net.buffers(), strict=True):
        ema_buffer.copy_(buffer)


# Columns 2-6 of the history: which are averaged over D updates and which over G updates.
D_STATS, G_STATS = [0, 2, 3], [1, 4]


@dataclass
class Progress:
    """Where training is: all of it goes into the checkpoint, so a resume is bit-exact."""

    step: int = 0  # D updates (one batch each); G updates every n_critic steps
    epoch: int = 0  # completed epochs
    batch_in_epoch: int = 0
    history: list[list[float]] = field(default_factory=list)
    frames: list[torch.Tensor] = field(default_factory=list)
    elapsed: float = 0.0
    # Running sums of (d_loss, g_loss, D(x), D(G(z)) before and after D's update) since the
    # last log row, kept on the device so the loop never waits for the host.
    sums: torch.Tensor = field(default_factory=lambda: torch.zeros(5))
    d_updates: int = 0
    g_updates: int = 0


def resume_progress(
    checkpoint_path: Path,
    fingerprint: str,
    run_id: str,
    nets: Any,
    data_order: torch.Generator,
    device: torch.device,
    hooks: Hooks,
) -> Progress | None:
    """Restore this run's interrupted training (nets, data order, RNGs) from its checkpoint.

    Returns the saved progress, with the saved epoch grids replayed through `hooks`, or None
    when there is no checkpoint of this run with these params and training starts afresh."""
    if not checkpoint_path.is_file():
        return None
    state = checkpoint.load(checkpoint_path)
    if state["fingerprint"] != fingerprint or state["run_id"] != run_id:
        return None
    nets.load_state_dict(state["nets"])
    progress = Progress(**state["progress"])
    progress.sums = progress.sums.to(device)
    data_order.set_state(state["data_order_at_epoch_start"])
    checkpoint.set_rng_state(state["rng"])
    for epoch, frame in enumerate(progress.frames, start=1):
        hooks.on_epoch(epoch, frame)
    return progress


def training_state(
    fingerprint: str,
    run_id: str,
    nets: Any,
    progress: Progress,
    elapsed: float,
    epoch_start_order: torch.Tensor,
) -> dict[str, Any]:
    """Everything a bit-exact resume needs, as resume_progress reads it back."""
    return {
        "fingerprint": fingerprint,
        "run_id": run_id,
        "nets": nets.state_dict(),
        "progress": dataclasses.asdict(progress) | {"elapsed": elapsed},
        "data_order_at_epoch_start": epoch_start_order,
        "rng": checkpoint.rng_state(),
    }


@dataclass
class Batch:
    """One step's data: real images and labels, G's fakes and the labels they were asked for."""

    real: torch.Tensor
    fake: torch.Tensor
    real_labels: torch.Tensor | None  # None for unconditional models
    fake_labels: torch.Tensor | None
    noise_std: float  # instance noise at this step


def d_inputs(x: torch.Tensor, config: Config, noise_std: float) -> torch.Tensor:
    """What D sees: DiffAugment'ed if asked, plus annealed instance noise if asked."""
    if config.diffaugment:
        x = diff_augment(x, config.diffaugment)
    if noise_std > 0:
        x = x + noise_std * torch.randn_like(x)
    return x


def d_step(
    nets: Nets, batch: Batch, config: Config, precision: Precision, device: torch.device
) -> torch.Tensor:
    """One D update, with the regularizers the params switch on; (d_loss, D(x), D(G(z)))."""
    gan_loss = LOSSES[config.loss]
    real, fake = batch.real, batch.fake.detach()
    with precision.autocast(device):
        real_out, real_classes = discriminate(
            nets.stepD, d_inputs(real, config, batch.noise_std), batch.real_labels
        )
        fake_out, fake_classes = discriminate(
            nets.stepD, d_inputs(fake, config, batch.noise_std), batch.fake_labels
        )
    real_out, fake_out = real_out.float(), fake_out.float()
    errD = gan_loss.d_loss(real_out, fake_out, config.real_label)
    if real_classes is not None:  # ACGAN: D also learns to tell the classes apart
        errD = errD + config.class_weight * (
            F.cross_entropy(real_classes.float(), batch.real_labels)
            + F.cross_entropy(fake_classes.float(), batch.fake_labels)
        )

    def critic(x: torch.Tensor) -> torch.Tensor:
        return discriminate(nets.stepD, x, batch.real_labels)[0]

    if config.gp_weight > 0:
        errD = errD + config.gp_weight * gradient_penalty(critic, real, fake.float())
    if config.r1_weight > 0:
        errD = errD + config.r1_weight / 2 * r1_penalty(critic, real)
    nets.optD.zero_grad(set_to_none=True)
    nets.scaler.scale(errD).backward()
    nets.scaler.step(nets.optD)
    if config.clip_value is not None:
        clip_weights_(nets.netD, config.clip_value)
    with torch.no_grad():
        return torch.stack(
            [errD.detach(), gan_loss.shown(real_out).mean(), gan_loss.shown(fake_out).mean()]
        )


def g_step(
    nets: Nets, batch: Batch, config: Config, precision: Precision, device: torch.device
) -> torch.Tensor:
    """One G update on D's updated verdict of the same fakes; (g_loss, D(G(z)))."""
    gan_loss = LOSSES[config.loss]
    with precision.autocast(device):
        output, classes = discriminate(
            nets.stepD, d_inputs(batch.fake, config, batch.noise_std), batch.fake_labels
        )
    output = output.float()
    errG = gan_loss.g_loss(output)
    if classes is not None:  # ACGAN: G makes fakes D classifies as the asked-for class
        errG = errG + config.class_weight * F.cross_entropy(classes.float(), batch.fake_labels)
    nets.optG.zero_grad(set_to_none=True)
    nets.scaler.scale(errG).backward()
    nets.scaler.step(nets.optG)
    if nets.netG_ema is not None:
        update_ema_(nets.netG_ema, nets.netG, config.ema_decay)
    with torch.no_grad():
        return torch.stack([errG.detach(), gan_loss.shown(output).mean()])


def _check_finite(progress: Progress, checkpoint_path: Path) -> list[float]:
    """The mean statistics since the last log row; stop on a NaN or infinite loss."""
    sums = progress.sums.tolist()
    means = [math.nan] * 5
    for columns, count in ((D_STATS, progress.d_updates), (G_STATS, progress.g_updates)):
        for column in columns:
            means[column] = sums[column] / count if count else math.nan
    for name, value, count in (
        ("d_loss", means[0], progress.d_updates),
        ("g_loss", means[1], progress.g_updates),
    ):
        if count and not math.isfinite(value):
            raise NonFiniteLossError(
                f"{name} became {value} by step {progress.step} (epoch {progress.epoch + 1}); "
                f"training stopped and the last good checkpoint ({checkpoint_path}) is kept. "
                "Try a lower lr or precision: fp32."
            )
    return means


def train(
    config: Config,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    n_classes: int | None = None,
    device: torch.device,
    precision: Precision,
    checkpoint_path: Path,
    run_id: str,
    hooks: Hooks | None = None,
) -> TrainResult:
    """Train netG/netD on uint8 `images` (N x C x H x W); resume from checkpoint_path if it fits.

    Conditional models (config.conditional) also need the class `labels` (N integers) and
    `n_classes` (by default, the number of the dataset's named classes)."""
    hooks = hooks or Hooks()
    torch.manual_seed(config.seed)
    if n_classes is None:
        n_classes = len(DATASETS[config.dataset].class_names)
    spec = model_spec(config, tuple(images.shape[1:]), n_classes)
    if config.conditional != "none":
        if n_classes < 2:
            raise ValueError(
                f"conditional = {config.conditional!r} needs at least 2 classes; "
                f"the data has {n_classes}"
            )
        if labels is None or len(labels) != len(images):
            raise ValueError(f"conditional = {config.conditional!r} needs one label per image")
    world = distributed.current()
    netG, netD = (
        distributed.convert_sync_batchnorm(net, world, config.train.sync_batchnorm)
        for net in build_models(config.model, spec, config.init)
    )
    memory_format = torch.channels_last if _is_conv(netD) else torch.contiguous_format
    netG.to(device, memory_format=memory_format)
    netD.to(device, memory_format=memory_format)
    nets = Nets(
        netG,
        netD,
        *make_optimizers(config, netG, netD),
        torch.amp.GradScaler(device.type, enabled=precision.grad_scaling),
        copy.deepcopy(netG).requires_grad_(False) if config.ema_decay is not None else None,
        distributed.wrap(netG, device, world),
        distributed.wrap(netD, device, world),
    )
    if config.train.compile:  # in place: parameter names (and checkpoints) stay the same
        netG.compile()
        netD.compile()
    images = images.to(device)
    labels = labels.to(device, torch.long) if spec.n_classes else None
    batch_size = config.batch_size  # per process; a step takes world.size x batch_size images
    global_batch = batch_size * world.size
    steps_per_epoch = len(images) // global_batch
    total_steps = steps_per_epoch * config.epochs
    fixed_noise = sample_latent(
        N_FIXED_SAMPLES,
        config.z_dim,
        config.latent,
        torch.device("cpu"),
        torch.Generator().manual_seed(config.seed),
    ).to(device)
    fixed_classes = fixed_labels(N_FIXED_SAMPLES, spec.n_classes, device)
    data_order = torch.Generator().manual_seed(config.seed)
    fingerprint = config.training_fingerprint()

    progress = resume_progress(
        checkpoint_path, fingerprint, run_id, nets, data_order, device, hooks
    )
    resumed_from = progress.step if progress else None
    progress = progress or Progress(sums=torch.zeros(5, device=device))

    started = time.perf_counter()
    last_checkpoint = started

    def save_checkpoint(epoch_start_order: torch.Tensor) -> None:
        nonlocal last_checkpoint
        _check_finite(progress, checkpoint_path)  # never overwrite a good checkpoint with NaNs
        if world.is_main:
            elapsed = progress.elapsed + time.perf_counter() - started
            state = training_state(fingerprint, run_id, nets, progress, elapsed, epoch_start_order)
            checkpoint.save(checkpoint_path, state)
        last_checkpoint = time.perf_counter()

    def checkpoint_due() -> bool:
        minutes = config.train.checkpoint_minutes
        by_time = minutes is not None and time.perf_counter() - last_checkpoint >= minutes * 60
        return by_time or progress.step % config.train.checkpoint_every == 0

    budget = 60 * config.train.max_minutes if config.train.max_minutes else math.inf

    def out_of_time() -> bool:
        return progress.elapsed + time.perf_counter() - started >= budget

    def log_row() -> None:
        if progress.g_updates == 0:  # with n_critic > 1, wait for a G update to report
            return
        distributed.mean_(progress.sums, world)  # averages over ranks; one sync per log row
        row = [
            float(progress.step),
            float(progress.epoch + 1),
            *_check_finite(progress, checkpoint_path),
        ]
        progress.history.append(row)
        hooks.on_log(dict(zip(HISTORY_COLUMNS, row, strict=True)))
        progress.sums.zero_()
        progress.d_updates = progress.g_updates = 0

    bar = tqdm(
        total=total_steps,
        initial=progress.step,
        desc="train",
        unit="step",
        dynamic_ncols=True,
        disable=not world.is_main,
    )
    netG.train()
    netD.train()
    while progress.epoch < config.epochs:
        epoch_start_order = data_order.get_state()
        order = torch.randperm(len(images), generator=data_order).to(device)
        for index in range(progress.batch_in_epoch, steps_per_epoch):
            # Every rank draws the whole global batch's order, noise and labels from the same
            # RNG states and takes its own slice: N ranks step as one process with N x batch.
            rows = world.shard(order[index * global_batch : (index + 1) * global_batch])
            real = scale_batch(images[rows]).contiguous(memory_format=memory_format)
            z = world.shard(sample_latent(global_batch, config.z_dim, config.latent, device))
            fake_labels = (
                world.shard(torch.randint(spec.n_classes, (global_batch,), device=device))
                if spec.n_classes
                else None
            )
            with precision.autocast(device):
                fake = generate(nets.stepG, z, fake_labels)
            batch = Batch(
                real,
                fake,
                labels[rows] if labels is not None else None,
                fake_labels,
                config.instance_noise * max(0.0, 1 - progress.step / total_steps),
            )
            progress.sums[D_STATS] += d_step(nets, batch, config, precision, device)
            progress.d_updates += 1
            if (progress.step + 1) % config.n_critic == 0:
                progress.sums[G_STATS] += g_step(nets, batch, config, precision, device)
                progress.g_updates += 1
            nets.scaler.update()
            progress.step += 1
            progress.batch_in_epoch = index + 1
            bar.update(1)
            if progress.step % config.train.log_every == 0 and progress.g_updates:
                log_row()
                bar.set_postfix(
                    d_loss=f"{progress.history[-1][2]:.3f}", g_loss=f"{progress.history[-1][3]:.3f}"
                )
            if out_of_time():
                break
            if progress.batch_in_epoch < steps_per_epoch and checkpoint_due():
                save_checkpoint(epoch_start_order)

        log_row()
        generator = nets.generator.eval()
        with torch.no_grad(), precision.autocast(device):
            progress.frames.append(to_uint8(generate(generator, fixed_noise, fixed_classes)).cpu())
        netG.train()
        progress.epoch += 1
        progress.batch_in_epoch = 0
        hooks.on_epoch(progress.epoch, progress.frames[-1])
        save_checkpoint(data_order.get_state())
        if out_of_time():  # train.max_minutes: the last epoch may be a partial one
            break
    bar.close()

    return TrainResult(
        netG=nets.generator.eval(),
        history=progress.history,
        frames=progress.frames,
        steps=progress.step,
        epochs=progress.epoch,
        images_seen=progress.step * global_batch,
        train_seconds=progress.elapsed + time.perf_counter() - started,
        resumed_from_step=resumed_from,
    )
