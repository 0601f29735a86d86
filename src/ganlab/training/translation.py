"""Image-to-image families, pix2pix and CycleGAN: their networks, updates, and Step for the runner.

The runner (ganlab.training.runner) does what every family shares; here is where
translation differs: batches are (source, target) images, G is updated before D,
pix2pix adds an L1 term to the target, CycleGAN two cycle terms, identity terms and
a history pool of fakes for its discriminators, and the learning rate decays linearly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganlab import checkpoint
from ganlab.config import Config
from ganlab.data.domains import Domains
from ganlab.device import Precision
from ganlab.images import scale_batch
from ganlab.models import TranslatorSpec, build_translator
from ganlab.sampling import example_rows, n_columns
from ganlab.training.distributed import LocalRandom, World
from ganlab.training.losses import LOSSES
from ganlab.training.optimizers import optimizer_for
from ganlab.training.params import gan_loss
from ganlab.training.runner import (
    ADVERSARIAL_COLUMNS,
    Hooks,
    Progress,
    Runner,
    RunResult,
    Stats,
    add_stats,
    run_fingerprint,
)

N_PROGRESS_EXAMPLES = 8


def resnet_blocks(side: int) -> int:
    """CycleGAN's generator depth: 9 blocks at 256 pixels, 6 at 128 and 64, 3 on small images."""
    return 9 if side >= 256 else 6 if side >= 64 else 3


def translator_spec(config: Config, image_shape: tuple[int, ...]) -> TranslatorSpec:
    side = image_shape[-1]
    blocks = config.translation.resnet_blocks or resnet_blocks(side)
    return TranslatorSpec(
        channels=image_shape[0], side=side, ngf=config.ngf, ndf=config.ndf, resnet_blocks=blocks
    )


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


def lr_factor_by_epoch(epoch: int, epochs: int, decay_epochs: int | None) -> float:
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
    betas = (config.optim.beta1, config.optim.beta2)
    optG = optimizer_for(config.optim.g_optimizer, generators, config.lr, betas)
    optD = optimizer_for(
        config.optim.d_optimizer, discriminators, config.optim.d_lr or config.lr, betas
    )
    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda epoch: lr_factor_by_epoch(epoch, config.epochs, config.translation.decay_epochs),
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


def pix2pix_step(s: TranslationStep, source: torch.Tensor, target: torch.Tensor) -> Stats:
    """G: fool D on (x, G(x)) plus lambda * |G(x) - y|; then D: (x, y) real, (x, G(x)) fake."""
    tn, config, loss, precision, device = s.tn, s.config, s.loss, s.precision, s.device
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
        return Stats.of(
            d_loss=errD,
            g_loss=adversarial,
            d_real=loss.shown(real_out).mean(),
            d_fake_d_step=loss.shown(fake_out_d).mean(),
            d_fake_g_step=loss.shown(fake_out).mean(),
            recon_l1=recon,
            identity_l1=torch.zeros((), device=source.device),
        )


def cyclegan_step(s: TranslationStep, source: torch.Tensor, target: torch.Tensor) -> Stats:
    """G and F together: adversarial + cycle + identity terms; then both Ds on pooled fakes."""
    tn, config, loss, precision, device = s.tn, s.config, s.loss, s.precision, s.device
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
        return Stats.of(
            d_loss=errD,
            g_loss=adversarial,
            d_real=0.5 * (loss.shown(real_t).mean() + loss.shown(real_s).mean()),
            d_fake_d_step=0.5 * (loss.shown(fake_t).mean() + loss.shown(fake_s).mean()),
            d_fake_g_step=0.5 * (loss.shown(out_target).mean() + loss.shown(out_source).mean()),
            recon_l1=cycle,
            identity_l1=identity,
        )


@dataclass
class TranslationResult(RunResult):
    nets: dict[str, nn.Module] = field(default_factory=dict)  # every network, in eval mode
    columns: int = 0  # images per row of the frames
    images_seen: int = 0


class TranslationStep:
    """One batch of (source, target) images through pix2pix's or CycleGAN's update."""

    # recon_l1: |G(x) - y| for pix2pix, the mean of both cycles' |F(G(x)) - x| for CycleGAN
    columns = (*ADVERSARIAL_COLUMNS, "recon_l1", "identity_l1")
    d_columns = ()  # D and G update once per step: every mean is over the same count
    extra_columns = ("lr",)

    def __init__(
        self,
        tn: TranslationNets,
        config: Config,
        domains: Domains,
        *,
        device: torch.device,
        precision: Precision,
    ) -> None:
        self.tn, self.config, self.domains = tn, config, domains
        self.device, self.precision = device, precision
        self.local_random = LocalRandom(config.seed, World(), device)  # one process: a no-op
        self.update_fn = cyclegan_step if tn.cycle else pix2pix_step
        self.loss = LOSSES[gan_loss(config)]
        self.source, self.target = domains.source.to(device), domains.target.to(device)
        n_source, n_target = len(domains.source), len(domains.target)
        longest = n_source if domains.paired else max(n_source, n_target)
        self.steps_per_epoch = longest // config.batch_size
        self.fixed_source = domains.source[:N_PROGRESS_EXAMPLES]
        self.fixed_target = domains.target[:N_PROGRESS_EXAMPLES] if domains.paired else None

    def state_dict(self) -> dict[str, Any]:
        return self.tn.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tn.load_state_dict(state)

    def train_mode(self, on: bool) -> None:
        for net in self.tn.nets.values():
            net.train(on)

    def epoch_order(self, data_order: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Paired data keep pairs together; unpaired domains are shuffled independently."""
        needed = self.steps_per_epoch * self.config.batch_size

        def cycle(n: int) -> torch.Tensor:
            return torch.randperm(n, generator=data_order).repeat(math.ceil(needed / n))[:needed]

        order_source = cycle(len(self.source))
        return order_source, order_source if self.domains.paired else cycle(len(self.target))

    def update(self, progress: Progress, index: int, order: tuple[torch.Tensor, ...]) -> None:
        rows = slice(index * self.config.batch_size, (index + 1) * self.config.batch_size)
        source = scale_batch(self.source[order[0][rows].to(self.device)])
        target = scale_batch(self.target[order[1][rows].to(self.device)])
        stats = self.update_fn(
            self,
            source.contiguous(memory_format=torch.channels_last),
            target.contiguous(memory_format=torch.channels_last),
        )
        add_stats(progress, self, stats)
        progress.d_updates += 1
        progress.g_updates += 1

    def log_extras(self) -> list[float]:
        return [self.tn.optG.param_groups[0]["lr"]]

    def end_epoch(self) -> None:
        for scheduler in self.tn.schedulers:
            scheduler.step()

    def frame(self) -> torch.Tensor:
        self.train_mode(False)
        frame = example_rows(
            self.tn.nets,
            self.fixed_source,
            self.fixed_target,
            device=self.device,
            precision=self.precision,
        )
        self.train_mode(True)
        return frame


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
    torch.manual_seed(config.seed)
    smaller = min(len(domains.source), len(domains.target))
    if smaller < config.batch_size:
        raise ValueError(
            f"{smaller} images in the smaller domain but batch_size = "
            f"{config.batch_size}: expected batch_size <= the images of each domain"
        )
    tn = build_nets(config, tuple(domains.source.shape[1:]), device, precision)
    if config.train.compile:
        for net in tn.nets.values():
            net.compile()
    step = TranslationStep(tn, config, domains, device=device, precision=precision)
    fingerprint = run_fingerprint(config, domains.source, domains.target)
    runner = Runner(step, config, device, checkpoint_path, run_id, hooks, fingerprint=fingerprint)
    result = runner.run(desc=f"train {config.model}")
    return TranslationResult(
        **vars(result),
        nets=tn.nets,
        columns=n_columns(config.model, domains.paired),
        images_seen=result.steps * config.batch_size,
    )


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
