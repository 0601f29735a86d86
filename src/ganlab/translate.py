"""The training loop for image-to-image models: pix2pix and CycleGAN.

It shares the noise-to-image loop's pieces (optimizers, precision, losses, hooks,
history, weights-only checkpoints with bit-exact resume, time budget) and differs
where translation does: batches are (source, target) images, G is updated before D,
pix2pix adds an L1 term to the target, CycleGAN two cycle terms, identity terms and
a history pool of fakes for its discriminators, and the learning rate decays linearly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ganlab import checkpoint
from ganlab.config import Config
from ganlab.device import Precision
from ganlab.domains import Domains
from ganlab.losses import LOSSES, GANLoss
from ganlab.models import TranslatorSpec, build_translator
from ganlab.train import (
    Hooks,
    NonFiniteLossError,
    Progress,
    optimizer_for,
    resume_progress,
    scale_batch,
    to_uint8,
    training_state,
)

# The noise loop's columns, then the reconstruction and identity L1 terms and the lr.
# recon_l1: |G(x) - y| for pix2pix, the mean of both cycles' |F(G(x)) - x| for CycleGAN.
TRANSLATION_COLUMNS = (
    "step",
    "epoch",
    "d_loss",
    "g_loss",
    "d_x",
    "d_g_z1",
    "d_g_z2",
    "recon_l1",
    "identity_l1",
    "lr",
)
N_STATS = 7  # d_loss, g_loss, D(y), D(G(x)) in G's step, D(G(x)) in D's step, recon, identity
N_PROGRESS_EXAMPLES = 8
PAPER_LOSS = {"pix2pix": "bce", "cyclegan": "lsgan"}


def gan_loss_name(config: Config) -> str:
    """translation.gan_loss, with auto as each paper has it."""
    name = config.translation.gan_loss
    return PAPER_LOSS[config.model] if name == "auto" else name


def resnet_blocks(side: int) -> int:
    """CycleGAN's generator depth: 9 blocks at 256 pixels, 6 at 128 and 64, 3 on small images."""
    return 9 if side >= 256 else 6 if side >= 64 else 3


def translator_spec(config: Config, image_shape: tuple[int, ...]) -> TranslatorSpec:
    side = image_shape[-1]
    blocks = config.translation.resnet_blocks or resnet_blocks(side)
    return TranslatorSpec(image_shape[0], side, config.ngf, config.ndf, blocks)


class ImagePool:
    """Shrivastava et al.'s history of generated images, as CycleGAN feeds its discriminators.

    Until the pool is full every fake goes in and comes back out; afterwards each fake,
    with probability 1/2, is swapped for a stored one, so D also sees older fakes and G
    can't chase a D that only remembers the latest batch."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: torch.Tensor | None = None

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        fakes = fakes.detach()
        if self.images is not None and self.images.device != fakes.device:  # after a resume
            self.images = self.images.to(fakes.device)
        out = []
        for fake in fakes:
            fake = fake.unsqueeze(0)
            stored = 0 if self.images is None else len(self.images)
            if stored < self.size:
                self.images = (
                    fake.clone() if self.images is None else torch.cat([self.images, fake])
                )
                out.append(fake)
            elif torch.rand(()) < 0.5:
                index = int(torch.randint(self.size, ()))
                out.append(self.images[index : index + 1].clone())
                self.images[index] = fake[0]
            else:
                out.append(fake)
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.images = state["images"]


def lr_factor(epoch: int, epochs: int, decay_epochs: int | None) -> float:
    """1 for the first epochs, then linearly down towards 0 over the last `decay_epochs`.

    CycleGAN's schedule (100 epochs at lr, 100 decaying); None decays over the last half."""
    decay = epochs - epochs // 2 if decay_epochs is None else min(decay_epochs, epochs)
    if decay == 0:
        return 1.0
    return 1.0 - max(0, epoch + 1 - (epochs - decay)) / (decay + 1)


@dataclass
class TranslationNets:
    """The networks by role (G, F, D, D_source), their two optimizers and schedulers."""

    nets: dict[str, nn.Module]
    optG: torch.optim.Optimizer
    optD: torch.optim.Optimizer
    schedulers: list[torch.optim.lr_scheduler.LRScheduler]
    scaler: torch.amp.GradScaler
    pools: dict[str, ImagePool]

    @property
    def cycle(self) -> bool:
        return "F" in self.nets

    @property
    def discriminators(self) -> list[nn.Module]:
        return [net for name, net in self.nets.items() if name.startswith("D")]

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": {name: net.state_dict() for name, net in self.nets.items()},
            "optG": self.optG.state_dict(),
            "optD": self.optD.state_dict(),
            "schedulers": [s.state_dict() for s in self.schedulers],
            "scaler": self.scaler.state_dict(),
            "pools": {name: pool.state_dict() for name, pool in self.pools.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(state["nets"][name])
        self.optG.load_state_dict(state["optG"])
        self.optD.load_state_dict(state["optD"])
        for scheduler, saved in zip(self.schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)
        self.scaler.load_state_dict(state["scaler"])
        for name, pool in self.pools.items():
            pool.load_state_dict(state["pools"][name])


def build_nets(
    config: Config, image_shape: tuple[int, ...], device: torch.device, precision: Precision
) -> TranslationNets:
    """Networks on the device, Adam (or the params' optimizers) and the linear lr decay."""
    nets = build_translator(config.model, translator_spec(config, image_shape), config.init)
    for net in nets.values():
        net.to(device, memory_format=torch.channels_last)
    generators = nn.ModuleList([net for name, net in nets.items() if not name.startswith("D")])
    discriminators = nn.ModuleList([net for name, net in nets.items() if name.startswith("D")])
    betas = (config.beta1, config.beta2)
    optG = optimizer_for(config.g_optimizer, generators, config.lr, betas)
    optD = optimizer_for(config.d_optimizer, discriminators, config.d_lr or config.lr, betas)
    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(
            opt, lambda epoch: lr_factor(epoch, config.epochs, config.translation.decay_epochs)
        )
        for opt in (optG, optD)
    ]
    pool_size = config.translation.pool_size if "F" in nets else 0  # pix2pix uses no pool
    return TranslationNets(
        nets,
        optG,
        optD,
        schedulers,
        torch.amp.GradScaler(device.type, enabled=precision.grad_scaling),
        {"D": ImagePool(pool_size), "D_source": ImagePool(pool_size)},
    )


def _optimize(tn: TranslationNets, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    tn.scaler.scale(loss).backward()
    tn.scaler.step(optimizer)


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).abs().mean()


def pix2pix_step(
    tn: TranslationNets,
    source: torch.Tensor,
    target: torch.Tensor,
    config: Config,
    loss: GANLoss,
    precision: Precision,
    device: torch.device,
) -> torch.Tensor:
    """G: fool D on (x, G(x)) plus lambda * |G(x) - y|; then D: (x, y) real, (x, G(x)) fake."""
    G, D = tn.nets["G"], tn.nets["D"]
    with precision.autocast(device):
        fake = G(source)
    D.requires_grad_(False)
    with precision.autocast(device):
        fake_out = D(torch.cat([source, fake], dim=1)).float()
    adversarial = loss.g_loss(fake_out)
    recon = _l1(fake, target)
    _optimize(tn, tn.optG, adversarial + config.translation.l1_weight * recon)
    D.requires_grad_(True)
    with precision.autocast(device):
        real_out = D(torch.cat([source, target], dim=1)).float()
        fake_out_d = D(torch.cat([source, fake.detach()], dim=1)).float()
    errD = 0.5 * loss.d_loss(real_out, fake_out_d, 1.0)  # halved, as pix2pix slows D down
    _optimize(tn, tn.optD, errD)
    tn.scaler.update()
    with torch.no_grad():
        return torch.stack(
            [
                errD.detach(),
                adversarial.detach(),
                loss.shown(real_out).mean(),
                loss.shown(fake_out).mean(),
                loss.shown(fake_out_d).mean(),
                recon.detach(),
                torch.zeros((), device=source.device),
            ]
        )


def cyclegan_step(
    tn: TranslationNets,
    source: torch.Tensor,
    target: torch.Tensor,
    config: Config,
    loss: GANLoss,
    precision: Precision,
    device: torch.device,
) -> torch.Tensor:
    """G and F together: adversarial + cycle + identity terms; then both Ds on pooled fakes."""
    G, F_, D, D_source = (tn.nets[k] for k in ("G", "F", "D", "D_source"))
    settings = config.translation
    identity_weight = settings.cycle_weight * settings.identity_weight
    for net in (D, D_source):
        net.requires_grad_(False)
    with precision.autocast(device):
        fake_target = G(source)
        fake_source = F_(target)
        cycled_source = F_(fake_target)
        cycled_target = G(fake_source)
        out_target = D(fake_target).float()
        out_source = D_source(fake_source).float()
    adversarial = loss.g_loss(out_target) + loss.g_loss(out_source)
    cycle = 0.5 * (_l1(cycled_source, source) + _l1(cycled_target, target))
    errG = adversarial + settings.cycle_weight * 2 * cycle
    identity = torch.zeros((), device=source.device)
    if identity_weight > 0:  # G keeps target images as they are, F source images
        with precision.autocast(device):
            identity = 0.5 * (_l1(G(target), target) + _l1(F_(source), source))
        errG = errG + identity_weight * 2 * identity
    _optimize(tn, tn.optG, errG)
    for net in (D, D_source):
        net.requires_grad_(True)
    pooled_target = tn.pools["D"].query(fake_target)
    pooled_source = tn.pools["D_source"].query(fake_source)
    with precision.autocast(device):
        real_t, fake_t = D(target).float(), D(pooled_target).float()
        real_s, fake_s = D_source(source).float(), D_source(pooled_source).float()
    errD = 0.5 * (loss.d_loss(real_t, fake_t, 1.0) + loss.d_loss(real_s, fake_s, 1.0))
    _optimize(tn, tn.optD, errD)
    tn.scaler.update()
    with torch.no_grad():
        return torch.stack(
            [
                errD.detach(),
                adversarial.detach(),
                0.5 * (loss.shown(real_t).mean() + loss.shown(real_s).mean()),
                0.5 * (loss.shown(out_target).mean() + loss.shown(out_source).mean()),
                0.5 * (loss.shown(fake_t).mean() + loss.shown(fake_s).mean()),
                cycle.detach(),
                identity.detach(),
            ]
        )


@torch.no_grad()
def translate(
    net: nn.Module,
    images: torch.Tensor,
    *,
    device: torch.device,
    precision: Precision,
    batch_size: int = 256,
) -> torch.Tensor:
    """uint8 images -> uint8 translations (CPU), in batches."""
    out = []
    for start in range(0, len(images), batch_size):
        batch = scale_batch(images[start : start + batch_size].to(device))
        with precision.autocast(device):
            out.append(to_uint8(net(batch.contiguous(memory_format=torch.channels_last))).cpu())
    return torch.cat(out)


def example_rows(
    nets: dict[str, nn.Module],
    source: torch.Tensor,
    target: torch.Tensor | None,
    *,
    device: torch.device,
    precision: Precision,
) -> torch.Tensor:
    """Per example: input | translation | reconstruction (CycleGAN) | target (paired data).

    Returned as one uint8 batch, row by row, for a grid with `columns(...)` images per row."""
    translated = translate(nets["G"], source, device=device, precision=precision)
    columns = [source, translated]
    if "F" in nets:
        columns.append(translate(nets["F"], translated, device=device, precision=precision))
    if target is not None:
        columns.append(target)
    return torch.stack(columns, dim=1).flatten(0, 1)


CYCLE_MODELS = ("cyclegan",)  # models with a way back (F), so rows show reconstructions


def n_columns(model: str, paired: bool) -> int:
    """Images per example row: input, translation, reconstruction (cycle models), target (pairs)."""
    return 2 + (model in CYCLE_MODELS) + paired


def save_translator(
    path: Path,
    nets: dict[str, nn.Module],
    config: Config,
    spec: TranslatorSpec,
    domains: Domains,
    precision: Precision,
) -> None:
    """The generators (G, and F for CycleGAN) with what evaluate and render need to use them."""
    checkpoint.save(
        path,
        {
            "kind": "translator",
            "model": config.model,
            "spec": dataclasses.asdict(spec),
            "generators": {k: net.state_dict() for k, net in nets.items() if not k.startswith("D")},
            "domains": list(domains.names),
            "paired": domains.paired,
            "precision": precision.name,
        },
    )


def load_translator(
    path: Path, device: torch.device
) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """The generators saved by save_translator, in eval mode on `device`, and the metadata."""
    saved = checkpoint.load(path)
    if saved.get("kind") != "translator":
        raise ValueError(f"{path} holds a noise-to-image generator, not a translation model")
    nets = build_translator(saved["model"], TranslatorSpec(**saved["spec"]), init="default")
    generators = {}
    for name, state in saved["generators"].items():
        nets[name].load_state_dict(state)
        generators[name] = nets[name].to(device, memory_format=torch.channels_last).eval()
    return generators, saved


@dataclass
class TranslationResult:
    nets: dict[str, nn.Module]  # every network, in eval mode
    history: list[list[float]]
    frames: list[torch.Tensor]
    columns: int  # images per row of the frames
    steps: int
    epochs: int
    images_seen: int
    train_seconds: float
    resumed_from_step: int | None = None


def _means(progress: Progress, checkpoint_path: Path) -> list[float]:
    count = progress.g_updates
    means = [value / count if count else math.nan for value in progress.sums.tolist()]
    for name, value in zip(("d_loss", "g_loss"), means[:2], strict=True):
        if count and not math.isfinite(value):
            raise NonFiniteLossError(
                f"{name} became {value} by step {progress.step} (epoch {progress.epoch + 1}); "
                f"training stopped and the last good checkpoint ({checkpoint_path}) is kept. "
                "Try a lower lr or precision: fp32."
            )
    return means


def train_translator(
    config: Config,
    domains: Domains,
    *,
    device: torch.device,
    precision: Precision,
    checkpoint_path: Path,
    run_id: str,
    hooks: Hooks | None = None,
) -> TranslationResult:
    """Train config.model on `domains`; resume from checkpoint_path when it was this run's."""
    hooks = hooks or Hooks()
    torch.manual_seed(config.seed)
    batch_size = config.batch_size
    n_source, n_target = len(domains.source), len(domains.target)
    if min(n_source, n_target) < batch_size:
        raise ValueError(
            f"{min(n_source, n_target)} images in the smaller domain but batch_size = "
            f"{batch_size}: expected batch_size <= the images of each domain"
        )
    steps_per_epoch = (n_source if domains.paired else max(n_source, n_target)) // batch_size
    tn = build_nets(config, tuple(domains.source.shape[1:]), device, precision)
    if config.train.compile:
        for net in tn.nets.values():
            net.compile()
    step_fn = cyclegan_step if tn.cycle else pix2pix_step
    loss = LOSSES[gan_loss_name(config)]
    source_images, target_images = domains.source.to(device), domains.target.to(device)
    fixed_source = domains.source[:N_PROGRESS_EXAMPLES]
    fixed_target = domains.target[:N_PROGRESS_EXAMPLES] if domains.paired else None
    columns = n_columns(config.model, domains.paired)
    data_order = torch.Generator().manual_seed(config.seed)
    fingerprint = config.training_fingerprint()

    progress = resume_progress(checkpoint_path, fingerprint, run_id, tn, data_order, device, hooks)
    resumed_from = progress.step if progress else None
    progress = progress or Progress(sums=torch.zeros(N_STATS, device=device))

    started = time.perf_counter()
    last_checkpoint = started
    budget = 60 * config.train.max_minutes if config.train.max_minutes else math.inf

    def elapsed() -> float:
        return progress.elapsed + time.perf_counter() - started

    def save_checkpoint(epoch_start_order: torch.Tensor) -> None:
        nonlocal last_checkpoint
        _means(progress, checkpoint_path)  # never overwrite a good checkpoint with NaNs
        state = training_state(fingerprint, run_id, tn, progress, elapsed(), epoch_start_order)
        checkpoint.save(checkpoint_path, state)
        last_checkpoint = time.perf_counter()

    def checkpoint_due() -> bool:
        minutes = config.train.checkpoint_minutes
        by_time = minutes is not None and time.perf_counter() - last_checkpoint >= minutes * 60
        return by_time or progress.step % config.train.checkpoint_every == 0

    def log_row() -> None:
        if progress.g_updates == 0:
            return
        lr = tn.optG.param_groups[0]["lr"]
        row = [float(progress.step), float(progress.epoch + 1), *_means(progress, checkpoint_path)]
        progress.history.append([*row, lr])
        hooks.on_log(dict(zip(TRANSLATION_COLUMNS, progress.history[-1], strict=True)))
        progress.sums.zero_()
        progress.d_updates = progress.g_updates = 0

    def draw_frame() -> torch.Tensor:
        for net in tn.nets.values():
            net.eval()
        frame = example_rows(
            tn.nets, fixed_source, fixed_target, device=device, precision=precision
        )
        for net in tn.nets.values():
            net.train()
        return frame

    bar = tqdm(
        total=steps_per_epoch * config.epochs,
        initial=progress.step,
        desc=f"train {config.model}",
        unit="step",
        dynamic_ncols=True,
    )
    for net in tn.nets.values():
        net.train()
    needed = steps_per_epoch * batch_size
    while progress.epoch < config.epochs:
        epoch_start_order = data_order.get_state()
        # Paired data keep pairs together; unpaired domains are shuffled independently.
        order_source = torch.randperm(n_source, generator=data_order).repeat(
            math.ceil(needed / n_source)
        )[:needed]
        order_target = (
            order_source
            if domains.paired
            else torch.randperm(n_target, generator=data_order).repeat(
                math.ceil(needed / n_target)
            )[:needed]
        )
        for index in range(progress.batch_in_epoch, steps_per_epoch):
            rows = slice(index * batch_size, (index + 1) * batch_size)
            source = scale_batch(source_images[order_source[rows].to(device)])
            target = scale_batch(target_images[order_target[rows].to(device)])
            progress.sums += step_fn(
                tn,
                source.contiguous(memory_format=torch.channels_last),
                target.contiguous(memory_format=torch.channels_last),
                config,
                loss,
                precision,
                device,
            )
            progress.d_updates += 1
            progress.g_updates += 1
            progress.step += 1
            progress.batch_in_epoch = index + 1
            bar.update(1)
            if progress.step % config.train.log_every == 0:
                log_row()
                last = progress.history[-1]
                bar.set_postfix(d_loss=f"{last[2]:.3f}", g_loss=f"{last[3]:.3f}")
            if elapsed() >= budget:
                break
            if progress.batch_in_epoch < steps_per_epoch and checkpoint_due():
                save_checkpoint(epoch_start_order)
        log_row()
        for scheduler in tn.schedulers:
            scheduler.step()
        progress.frames.append(draw_frame())
        progress.epoch += 1
        progress.batch_in_epoch = 0
        hooks.on_epoch(progress.epoch, progress.frames[-1])
        save_checkpoint(data_order.get_state())
        if elapsed() >= budget:
            break
    bar.close()
    for net in tn.nets.values():
        net.eval()
    return TranslationResult(
        nets=tn.nets,
        history=progress.history,
        frames=progress.frames,
        columns=columns,
        steps=progress.step,
        epochs=progress.epoch,
        images_seen=progress.step * batch_size,
        train_seconds=elapsed(),
        resumed_from_step=resumed_from,
    )
