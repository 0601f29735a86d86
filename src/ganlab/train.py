"""The one training loop for noise-to-image GANs.

GAN variants are params (model, loss, optimizers, tricks), never copies of this
loop. The loop keeps the data on the device as uint8 and scales batches on the
fly, reads losses back from the device only at log intervals, and checkpoints
everything a bit-exact resume needs (weights, optimizers, RNG states, data order).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ganlab import checkpoint
from ganlab.config import Config
from ganlab.device import Precision
from ganlab.losses import LOSSES
from ganlab.models import ModelSpec, build_models

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
    images_seen: int
    train_seconds: float
    resumed_from_step: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def model_spec(config: Config, image_shape: tuple[int, int, int]) -> ModelSpec:
    return ModelSpec(config.z_dim, image_shape, config.ngf, config.ndf, config.dropout)


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


def make_optimizers(
    config: Config, netG: nn.Module, netD: nn.Module
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for G; Adam or SGD (the classic lab's D) for D, at d_lr or lr."""
    betas = (config.beta1, config.beta2)
    optG = torch.optim.Adam(netG.parameters(), lr=config.lr, betas=betas, foreach=True)
    d_lr = config.d_lr or config.lr
    if config.d_optimizer == "sgd":
        optD: torch.optim.Optimizer = torch.optim.SGD(netD.parameters(), lr=d_lr, foreach=True)
    else:
        optD = torch.optim.Adam(netD.parameters(), lr=d_lr, betas=betas, foreach=True)
    return optG, optD


def _is_conv(net: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in net.modules())


def train(
    config: Config,
    images: torch.Tensor,
    *,
    device: torch.device,
    precision: Precision,
    checkpoint_path: Path,
    run_id: str,
    hooks: Hooks | None = None,
) -> TrainResult:
    """Train netG/netD on uint8 `images` (N x C x H x W); resume from checkpoint_path if it fits."""
    hooks = hooks or Hooks()
    torch.manual_seed(config.seed)
    image_shape = tuple(images.shape[1:])
    netG, netD = build_models(config.model, model_spec(config, image_shape), config.init)
    memory_format = torch.channels_last if _is_conv(netD) else torch.contiguous_format
    netG.to(device, memory_format=memory_format)
    netD.to(device, memory_format=memory_format)
    optG, optD = make_optimizers(config, netG, netD)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.grad_scaling)
    gan_loss = LOSSES[config.loss]

    images = images.to(device)
    n_images = images.shape[0]
    batch_size = config.batch_size
    steps_per_epoch = n_images // batch_size
    total_steps = steps_per_epoch * config.epochs

    fixed_noise = sample_latent(
        N_FIXED_SAMPLES,
        config.z_dim,
        config.latent,
        torch.device("cpu"),
        torch.Generator().manual_seed(config.seed),
    ).to(device)
    data_order = torch.Generator().manual_seed(config.seed)

    step, epoch, batch_in_epoch = 0, 0, 0
    history: list[list[float]] = []
    frames: list[torch.Tensor] = []
    elapsed = 0.0
    resumed_from = None
    fingerprint = config.training_fingerprint()
    if checkpoint_path.is_file():
        state = checkpoint.load(checkpoint_path)
        if state["fingerprint"] == fingerprint and state["run_id"] == run_id:
            netG.load_state_dict(state["netG"])
            netD.load_state_dict(state["netD"])
            optG.load_state_dict(state["optG"])
            optD.load_state_dict(state["optD"])
            scaler.load_state_dict(state["scaler"])
            step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
            history, frames, elapsed = state["history"], list(state["frames"]), state["elapsed"]
            data_order.set_state(state["data_order_at_epoch_start"])
            checkpoint.set_rng_state(state["rng"])
            resumed_from = step
            for i, frame in enumerate(frames):
                hooks.on_epoch(i + 1, frame)

    def save_checkpoint(epoch_start_order: torch.Tensor) -> None:
        checkpoint.save(
            checkpoint_path,
            {
                "fingerprint": fingerprint,
                "run_id": run_id,
                "netG": netG.state_dict(),
                "netD": netD.state_dict(),
                "optG": optG.state_dict(),
                "optD": optD.state_dict(),
                "scaler": scaler.state_dict(),
                "step": step,
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "history": history,
                "frames": frames,
                "elapsed": elapsed + time.perf_counter() - started,
                "data_order_at_epoch_start": epoch_start_order,
                "rng": checkpoint.rng_state(),
            },
        )

    # Running sums of (d_loss, g_loss, D(x), D(G(z)) before and after D's update), on device.
    sums = torch.zeros(5, device=device)
    since_log = 0

    def flush_log() -> None:
        nonlocal sums, since_log
        if since_log == 0:
            return
        means = (sums / since_log).tolist()
        if not all(math.isfinite(v) for v in means[:2]):
            name = "d_loss" if not math.isfinite(means[0]) else "g_loss"
            raise NonFiniteLossError(
                f"{name} became {means[HISTORY_COLUMNS.index(name) - 2]} by step {step} "
                f"(epoch {epoch + 1}); training stopped, the last good checkpoint "
                f"({checkpoint_path}) is kept. Try a lower lr or precision: fp32."
            )
        row = [float(step), float(epoch + 1), *means]
        history.append(row)
        hooks.on_log(dict(zip(HISTORY_COLUMNS, row, strict=True)))
        sums = torch.zeros(5, device=device)
        since_log = 0

    started = time.perf_counter()
    netG.train()
    netD.train()
    progress = tqdm(total=total_steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    while epoch < config.epochs:
        epoch_start_order = data_order.get_state()
        order = torch.randperm(n_images, generator=data_order).to(device)
        for index in range(batch_in_epoch, steps_per_epoch):
            batch = images[order[index * batch_size : (index + 1) * batch_size]]
            real = scale_batch(batch).contiguous(memory_format=memory_format)
            z = sample_latent(batch_size, config.z_dim, config.latent, device)

            # (1) Update D: maximize log D(x) + log(1 - D(G(z)))
            with precision.autocast(device):
                fake = netG(z)
                real_logits = netD(real).float()
                fake_logits = netD(fake.detach()).float()
            errD = gan_loss.d_loss(real_logits, fake_logits, config.real_label)
            optD.zero_grad(set_to_none=True)
            scaler.scale(errD).backward()
            scaler.step(optD)

            # (2) Update G: the loss's generator objective on D's fresh verdict
            with precision.autocast(device):
                output = netD(fake).float()
            errG = gan_loss.g_loss(output)
            optG.zero_grad(set_to_none=True)
            scaler.scale(errG).backward()
            scaler.step(optG)
            scaler.update()

            with torch.no_grad():
                sums += torch.stack(
                    [
                        errD.detach(),
                        errG.detach(),
                        torch.sigmoid(real_logits).mean(),
                        torch.sigmoid(fake_logits).mean(),
                        torch.sigmoid(output).mean(),
                    ]
                )
            step += 1
            since_log += 1
            batch_in_epoch = index + 1
            progress.update(1)
            if step % config.train.log_every == 0:
                flush_log()
                progress.set_postfix(d_loss=f"{history[-1][2]:.3f}", g_loss=f"{history[-1][3]:.3f}")
            if step % config.train.checkpoint_every == 0 and batch_in_epoch < steps_per_epoch:
                flush_log()
                save_checkpoint(epoch_start_order)

        flush_log()
        netG.eval()
        with torch.no_grad(), precision.autocast(device):
            frames.append(to_uint8(netG(fixed_noise)).cpu())
        netG.train()
        epoch += 1
        batch_in_epoch = 0
        hooks.on_epoch(epoch, frames[-1])
        save_checkpoint(data_order.get_state())
    progress.close()

    train_seconds = elapsed + time.perf_counter() - started
    return TrainResult(
        netG=netG.eval(),
        history=history,
        frames=frames,
        steps=step,
        images_seen=step * batch_size,
        train_seconds=train_seconds,
        resumed_from_step=resumed_from,
    )
