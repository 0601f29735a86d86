"""The noise-to-image GAN family: its networks, D and G updates, and its Step for the runner.

GAN variants are params (model, loss, optimizers, tricks), never copies of this code.
The step keeps the data on the device as uint8 and scales batches on the fly; the
runner (ganlab.training.runner) does everything around the updates.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.config import Config, OptimSection, RegularizeSection
from ganlab.data.datasets import DATASETS
from ganlab.device import Precision
from ganlab.images import fixed_labels, sample_latent, scale_batch, to_uint8
from ganlab.models import ModelSpec, build_models, memory_format_for, pixel_low
from ganlab.models.conditional import discriminate, forward_generator
from ganlab.training import distributed
from ganlab.training.augment import diff_augment, progressive_bits
from ganlab.training.ema import ema_decay_at, standing_statistics_, update_ema_
from ganlab.training.losses import LOSSES, d_accuracy
from ganlab.training.monitor import Monitor, Reference
from ganlab.training.optimizers import lr_factor_by_fraction, optimizer_for, set_lr_
from ganlab.training.regularizers import clip_weights_, gradient_penalty, r1_penalty
from ganlab.training.runner import (
    ADVERSARIAL_COLUMNS,
    Hooks,
    Progress,
    Runner,
    RunResult,
    Stats,
    add_stats,
    history_columns,
    planned_steps,
    run_fingerprint,
)
from ganlab.training.semi_supervised import LabeledBatches, class_loss, labeled_indices

CLASS_LOSS_COLUMN = "d_class_loss"  # the semi-supervised D's cross-entropy on labeled images


@dataclass
class TrainResult(RunResult):
    netG: nn.Module | None = None  # the generator to sample from (the EMA one if kept), eval mode
    images_seen: int = 0
    netD: nn.Module | None = None  # the last discriminator (the semi-supervised GAN's product)
    labeled: LabeledBatches | None = None  # the semi-supervised GAN's labeled images


def model_spec(config: Config, image_shape: tuple[int, int, int], n_classes: int) -> ModelSpec:
    """The models' shape from params, the data's image shape and its number of classes
    (for a class-conditional G and D, or a semi-supervised D)."""
    return ModelSpec(
        z_dim=config.z_dim,
        image_shape=image_shape,
        ngf=config.ngf,
        ndf=config.ndf,
        dropout=config.dropout,
        d_norm=config.d.norm,
        minibatch_std=config.d.minibatch_std,
        spectral_norm=config.d.spectral_norm,
        conditioning=config.classes.conditional,
        n_classes=n_classes if config.classes.conditional != "none" else 0,
        g_hidden=config.mlp.g_hidden,
        d_hidden=config.mlp.d_hidden,
        g_activation=config.mlp.g_activation,
        d_activation=config.mlp.d_activation,
        output=config.mlp.output,
        minibatch_discrimination=config.d.minibatch_discrimination,
        d_classes=n_classes if config.semi_supervised_on else 0,
        label_input=config.classes.label_input,
        self_modulation=config.g.self_modulation,
        progressive_bits=config.regularize.progressive_bits,
    )


def make_optimizers(
    optim: OptimSection, lr: float, netG: nn.Module, netD: nn.Module
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """g_optimizer at lr for G, d_optimizer at d_lr (or lr) for D; Adam uses (beta1, beta2)."""
    betas = (optim.beta1, optim.beta2)
    return (
        optimizer_for(optim.g_optimizer, netG, lr, betas),
        optimizer_for(optim.d_optimizer, netD, optim.d_lr or lr, betas),
    )


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
    ema_updates: int = 0  # EMA updates so far: when the standing statistics were measured

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


@dataclass
class Batch:
    """One step's data: real images and labels, G's fakes and the labels they were asked for."""

    real: torch.Tensor
    fake: torch.Tensor
    real_labels: torch.Tensor | None  # None for unconditional models
    fake_labels: torch.Tensor | None
    noise_std: float  # instance noise at this step
    step: int = 0  # D updates before this one: lazy R1's clock
    active_bits: int = 0  # progressive augmentation's bits in use at this step
    topk: int | None = None  # top-k G updates: the fakes G learns from (None: all)
    g_update: int = 0  # G updates before this one: the EMA warm-up's clock
    # the semi-supervised GAN: a batch of the labeled images and their classes
    labeled: tuple[torch.Tensor, torch.Tensor] | None = None


def d_inputs(x: torch.Tensor, regularize: RegularizeSection, noise_std: float) -> torch.Tensor:
    """What D sees: DiffAugment'ed if asked, plus annealed instance noise if asked."""
    if regularize.diffaugment:
        x = diff_augment(x, regularize.diffaugment)
    if noise_std > 0:
        x = x + noise_std * torch.randn_like(x)
    return x


def judge(
    nets: Nets,
    x: torch.Tensor,
    labels: torch.Tensor | None,
    regularize: RegularizeSection,
    batch: Batch,
    *,
    augment: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """D's verdict on x as D sees it (d_inputs, unless `augment` is off: x is augmented
    already, or a penalty's input), with progressive augmentation's bit channels, whose XOR
    flips the verdict's sign."""
    if augment:
        x = d_inputs(x, regularize, batch.noise_std)
    if regularize.progressive_bits == 0:
        return discriminate(nets.stepD, x, labels)
    x, sign = progressive_bits(x, regularize.progressive_bits, batch.active_bits)
    output, classes = discriminate(nets.stepD, x, labels)
    return output * sign.to(output.dtype), classes


def d_step(
    nets: Nets, batch: Batch, config: Config, precision: Precision, device: torch.device
) -> Stats:
    """One D update, with the regularizers the params switch on; its loss, D's mean output on
    the real and the fake images, D's accuracy on each (NaN for critics) and, semi-supervised,
    D's class loss on the labeled batch."""
    gan_loss = LOSSES[config.loss]
    real, fake = batch.real, batch.fake.detach()
    regularize = config.regularize
    with precision.autocast(device):  # D's inputs as D sees them, each drawn in this order
        real_out, real_classes = judge(nets, real, batch.real_labels, regularize, batch)
        fake_out, fake_classes = judge(nets, fake, batch.fake_labels, regularize, batch)
    real_out, fake_out = real_out.float(), fake_out.float()
    errD = gan_loss.d_loss(real_out, fake_out, config.regularize.real_label)
    if real_classes is not None:  # ACGAN: D also learns to tell the classes apart
        errD = errD + config.classes.class_weight * (
            F.cross_entropy(real_classes.float(), batch.real_labels)
            + F.cross_entropy(fake_classes.float(), batch.fake_labels)
        )
    supervised = None
    if batch.labeled is not None:  # semi-supervised: D also learns the few labeled images
        images, classes = batch.labeled
        with precision.autocast(device):
            supervised = class_loss(
                nets.netD, d_inputs(images, config.regularize, batch.noise_std), classes
            )
        errD = errD + config.classes.class_weight * supervised

    def critic(x: torch.Tensor) -> torch.Tensor:
        return judge(nets, x, batch.real_labels, regularize, batch, augment=False)[0]

    if regularize.gp_weight > 0:
        errD = errD + regularize.gp_weight * gradient_penalty(critic, real, fake.float())
    if regularize.r1_weight > 0 and batch.step % regularize.r1_every == 0:
        # lazy R1 (StyleGAN2): every r1_every D steps, weighted r1_every times
        errD = errD + regularize.r1_weight * regularize.r1_every / 2 * r1_penalty(critic, real)
    nets.optD.zero_grad(set_to_none=True)
    nets.scaler.scale(errD).backward()
    nets.scaler.step(nets.optD)
    if config.regularize.clip_value is not None:
        clip_weights_(nets.netD, config.regularize.clip_value)
    with torch.no_grad():
        shown = [gan_loss.shown(real_out).mean(), gan_loss.shown(fake_out).mean()]
        accuracy = (
            d_accuracy(real_out, fake_out)
            if gan_loss.probability
            else torch.full((2,), math.nan, device=errD.device)
        )
        stats = {
            "d_loss": errD,
            "d_real": shown[0],
            "d_fake_d_step": shown[1],
            "d_acc_real": accuracy[0],
            "d_acc_fake": accuracy[1],
        }
        if supervised is not None:
            stats[CLASS_LOSS_COLUMN] = supervised
        return Stats.of(**stats)


@contextmanager
def frozen(nets: Nets) -> Iterator[None]:
    """D's weights without gradients during G's update: d_step zeroes them before its own
    backward, so computing them (~2 ms of a ~39 ms DCGAN step on a CPU) was wasted. Under DDP,
    no_sync too: there are no D gradients to reduce."""
    no_sync = getattr(nets.stepD, "no_sync", nullcontext)
    nets.netD.requires_grad_(False)
    try:
        with no_sync():
            yield
    finally:
        nets.netD.requires_grad_(True)


def g_step(
    nets: Nets, batch: Batch, config: Config, precision: Precision, device: torch.device
) -> Stats:
    """One G update on D's updated verdict of the same fakes; its loss and D's mean output."""
    gan_loss = LOSSES[config.loss]
    regularize = config.regularize
    fake = d_inputs(batch.fake, regularize, batch.noise_std)
    with frozen(nets):
        with precision.autocast(device):
            output, classes = judge(nets, fake, batch.fake_labels, regularize, batch, augment=False)
        output = output.float()
        if config.feature_matching:
            real = d_inputs(batch.real, regularize, batch.noise_std)
            errG = feature_matching_loss(nets.netD, real, fake, precision, device)
        elif batch.topk is not None:  # top-k: the fakes D rates most real
            errG = gan_loss.g_loss(output.topk(batch.topk).values)
        else:
            errG = gan_loss.g_loss(output)
        if classes is not None:  # ACGAN: G makes fakes D classifies as the asked-for class
            errG = errG + config.classes.class_weight * F.cross_entropy(
                classes.float(), batch.fake_labels
            )
        nets.optG.zero_grad(set_to_none=True)
        nets.scaler.scale(errG).backward()
    nets.scaler.step(nets.optG)
    if nets.netG_ema is not None:
        update_ema_(nets.netG_ema, nets.netG, ema_decay_at(config.ema, batch.g_update))
        nets.ema_updates += 1
    with torch.no_grad():
        return Stats.of(g_loss=errG, d_fake_g_step=gan_loss.shown(output).mean())


def feature_matching_loss(
    netD: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    precision: Precision,
    device: torch.device,
) -> torch.Tensor:
    """Feature matching (Salimans et al., 2016): G matches the mean of D's last hidden
    features on real data, ||E f(x) - E f(G(z))||^2, instead of fooling D's output."""
    with precision.autocast(device):
        with torch.no_grad():
            real_features = netD.features_of(real).flatten(1).float().mean(dim=0)
        fake_features = netD.features_of(fake).flatten(1).float().mean(dim=0)
    return (real_features - fake_features).pow(2).sum()


class GANStep:
    """One batch of a noise-to-image GAN: D on real and fake, then (every n_critic) G."""

    columns = (
        *ADVERSARIAL_COLUMNS,
        "d_acc_real",  # fraction of real images D calls real (probability losses only)
        "d_acc_fake",  # fraction of fakes D calls fake
    )
    # means over D's updates; g_loss and D(G(z)) after: over G's
    d_columns = ("d_loss", "d_real", "d_fake_d_step", "d_acc_real", "d_acc_fake")
    extra_columns = ()

    def __init__(
        self,
        nets: Nets,
        config: Config,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        spec: ModelSpec,
        *,
        device: torch.device,
        precision: Precision,
        world: distributed.World,
        labeled: LabeledBatches | None = None,
    ) -> None:
        self.nets, self.config, self.images, self.labels, self.spec = (
            nets,
            config,
            images,
            labels,
            spec,
        )
        self.device, self.precision, self.world = device, precision, world
        self.local_random = distributed.LocalRandom(config.seed, world, device)
        self.labeled = labeled
        self.standing_at: int | None = None  # nets.ema_updates at the last standing statistics
        if labeled is not None:  # semi-supervised: D's cross-entropy on the labeled images too
            self.columns = (*GANStep.columns, CLASS_LOSS_COLUMN)
            self.d_columns = (*GANStep.d_columns, CLASS_LOSS_COLUMN)
        if config.optim.lr_decay != "none":
            self.extra_columns = ("lr",)  # G's, as it falls
        self.memory_format = memory_format_for(nets.netD)
        self.low = pixel_low(nets.netG)  # real images in G's output range
        self.global_batch = config.batch_size * world.size  # a step takes world.size batches
        self.steps_per_epoch = len(images) // self.global_batch
        self.total_steps = planned_steps(config, self.steps_per_epoch)
        n_fixed = config.render.n_samples  # the progress frames' fixed noise
        self.fixed_noise = sample_latent(
            n_fixed,
            config.z_dim,
            config.latent,
            torch.device("cpu"),
            torch.Generator().manual_seed(config.seed),
        ).to(device)
        self.fixed_classes = fixed_labels(n_fixed, spec.n_classes, device)

    def state_dict(self) -> dict[str, Any]:
        return self.nets.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets.load_state_dict(state)
        self.standing_at = None

    def train_mode(self, on: bool) -> None:
        self.nets.netG.train(on)
        self.nets.netD.train(on)
        if not on:
            self.nets.generator.eval()

    def epoch_order(self, data_order: torch.Generator) -> torch.Tensor:
        return torch.randperm(len(self.images), generator=data_order).to(self.device)

    def update(self, progress: Progress, index: int, order: torch.Tensor) -> None:
        config, world, device, local = self.config, self.world, self.device, self.local_random
        # Every rank draws the whole global batch's order, noise and labels from the same RNG
        # states and takes its own slice: N ranks step as one process with N x batch. What a
        # rank draws for its slice alone (dropout, DiffAugment, instance noise) comes from its
        # own stream (distributed.LocalRandom; one process: the one stream).
        rows = world.shard(order[index * self.global_batch : (index + 1) * self.global_batch])
        real = scale_batch(self.images[rows], self.low).contiguous(memory_format=self.memory_format)
        z = world.shard(sample_latent(self.global_batch, config.z_dim, config.latent, device))
        fake_labels = (
            world.shard(torch.randint(self.spec.n_classes, (self.global_batch,), device=device))
            if self.spec.n_classes
            else None
        )
        with local.active(), self.precision.autocast(device):
            fake = forward_generator(self.nets.stepG, z, fake_labels)
        batch = Batch(
            real,
            fake,
            self.labels[rows] if self.labels is not None else None,
            fake_labels,
            config.regularize.instance_noise * max(0.0, 1 - progress.step / self.total_steps),
            step=progress.step,
            active_bits=self.active_bits(progress.step),
            topk=self.topk(progress.step, len(real)),
            labeled=self.labeled(progress.step) if self.labeled is not None else None,
        )
        self._schedule_lr(progress.run_fraction)
        with local.active():
            add_stats(progress, self, d_step(self.nets, batch, config, self.precision, device))
        progress.d_updates += 1
        if (progress.step + 1) % config.n_critic == 0:
            for turn in range(config.n_gen):
                # G updates so far, from the step alone (so a resumed run counts the same):
                # n_gen at each of the step // n_critic G turns before this one, then this turn's
                batch.g_update = progress.step // config.n_critic * config.n_gen + turn
                if turn > 0 or config.g_fakes == "fresh":
                    batch.fake = self._fakes_for_g(z, fake_labels)
                with local.active():
                    stats = g_step(self.nets, batch, config, self.precision, device)
                add_stats(progress, self, stats)
                progress.g_updates += 1
        self.nets.scaler.update()

    def active_bits(self, step: int) -> int:
        """Progressive augmentation's bits in use: one more every progressive_every steps."""
        regularize = self.config.regularize
        if regularize.progressive_bits == 0:
            return 0
        return min(regularize.progressive_bits, step // regularize.progressive_every)

    def topk(self, step: int, batch_size: int) -> int | None:
        """Top-k G updates (Sinha et al., 2020): k = batch * max(topk_decay ** epoch, topk)."""
        g = self.config.g
        if g.topk is None:
            return None
        fraction = max(g.topk_decay ** (step // self.steps_per_epoch), g.topk)
        return max(1, math.ceil(fraction * batch_size))

    def _schedule_lr(self, run_fraction: float) -> None:
        """lr_decay: G's and D's learning rates for this point of the run."""
        config = self.config
        if config.optim.lr_decay == "none":
            return
        factor = lr_factor_by_fraction(
            config.optim.lr_decay, config.optim.lr_decay_start, run_fraction
        )
        set_lr_(self.nets.optG, config.lr * factor)
        set_lr_(self.nets.optD, (config.optim.d_lr or config.lr) * factor)

    def _fakes_for_g(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """New fakes for a G update: of fresh noise (g_fakes: fresh), or of the same z again
        through the updated G (the second and later of n_gen updates)."""
        config, device = self.config, self.device
        if config.g_fakes == "fresh":  # shared noise, as in update
            z = self.world.shard(
                sample_latent(self.global_batch, config.z_dim, config.latent, device)
            )
        with self.local_random.active(), self.precision.autocast(device):
            return forward_generator(self.nets.stepG, z, labels)

    def log_extras(self) -> list[float]:
        return [self.nets.optG.param_groups[0]["lr"]] if self.extra_columns else []

    def end_epoch(self) -> None:
        pass

    def sampler(self) -> nn.Module:
        """The generator to sample from: the EMA one, in eval mode with BatchNorm statistics
        of its own (ganlab.training.ema), when it is kept; else G as it trains."""
        nets = self.nets
        if nets.netG_ema is None:
            return nets.netG
        if self.standing_at != nets.ema_updates:  # measured once per EMA update, when asked
            standing_statistics_(nets.netG_ema, self.config, self.device, self.precision)
            self.standing_at = nets.ema_updates
        return nets.netG_ema.eval()

    def snapshot(self) -> dict[str, Any]:
        """G as it is sampled from (the EMA one if kept) and D, both as state dicts."""
        return {"G": self.sampler().state_dict(), "D": self.nets.netD.state_dict()}

    def frame(self) -> torch.Tensor:
        """The fixed noise through the generator that is sampled from (the EMA one if kept)."""
        generator = self.sampler().eval()
        with torch.no_grad(), self.precision.autocast(self.device):
            frame = to_uint8(
                forward_generator(generator, self.fixed_noise, self.fixed_classes), self.low
            ).cpu()
        self.nets.netG.train()
        return frame


def history_columns_of(config: Config) -> tuple[str, ...]:
    """The columns of a noise-to-image GAN's history rows under these params."""
    extra = (CLASS_LOSS_COLUMN,) if config.semi_supervised_on else ()
    lr = ("lr",) if config.optim.lr_decay != "none" else ()
    return (*history_columns(GANStep), *extra, *lr)


def build_nets(
    config: Config, spec: ModelSpec, device: torch.device, precision: Precision, world: Any
) -> Nets:
    """G and D on the device (channels-last for conv nets), optimizers, EMA, DDP wrappers."""
    netG, netD = (
        distributed.convert_sync_batchnorm(net, world, config.train.sync_batchnorm)
        for net in build_models(config.model, spec, config.init)
    )
    memory_format = memory_format_for(netD)
    netG.to(device, memory_format=memory_format)
    netD.to(device, memory_format=memory_format)
    nets = Nets(
        netG,
        netD,
        *make_optimizers(config.optim, config.lr, netG, netD),
        torch.amp.GradScaler(device.type, enabled=precision.grad_scaling),
        copy.deepcopy(netG).requires_grad_(False) if config.ema.decay is not None else None,
        distributed.wrap(netG, device, world),
        distributed.wrap(netD, device, world),
    )
    if config.train.compile:  # in place: parameter names (and checkpoints) stay the same
        netG.compile()
        netD.compile()
    return nets


def _check_conditioning(config: Config, labels: torch.Tensor | None, n: int, classes: int) -> None:
    if config.classes.conditional == "none":
        return
    if classes < 2:
        raise ValueError(
            f"classes.conditional = {config.classes.conditional!r} needs at least 2 classes; "
            f"the data has {classes}"
        )
    if labels is None or len(labels) != n:
        raise ValueError(
            f"classes.conditional = {config.classes.conditional!r} needs one label per image"
        )


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
    reference: Reference | None = None,
) -> TrainResult:
    """Train netG/netD on uint8 `images` (N x C x H x W); resume from checkpoint_path if it fits.

    Conditional models (config.classes.conditional) also need the class `labels` (N integers) and
    `n_classes` (by default, the number of the dataset's named classes). With a `reference`
    and train.eval_every, the generator is scored while it trains and the best one kept."""
    torch.manual_seed(config.seed)
    if n_classes is None:
        n_classes = len(DATASETS[config.dataset].class_names)
    spec = model_spec(config, tuple(images.shape[1:]), n_classes)
    _check_conditioning(config, labels, len(images), n_classes)
    world = distributed.current()
    nets = build_nets(config, spec, device, precision, world)
    labeled = _labeled_batches(config, images, labels, device, pixel_low(nets.netG))
    fingerprint = run_fingerprint(config, images, labels)
    images = images.to(device)
    labels = labels.to(device, torch.long) if spec.n_classes else None
    step = GANStep(
        nets,
        config,
        images,
        labels,
        spec,
        device=device,
        precision=precision,
        world=world,
        labeled=labeled,
    )
    monitor = None
    if reference is not None and config.train.eval_every is not None:
        monitor = Monitor(reference, step.sampler, config, device=device, precision=precision)
    place = (device, checkpoint_path, run_id)
    runner = Runner(step, config, *place, hooks, world, monitor, fingerprint=fingerprint)
    result = runner.run()
    return TrainResult(
        **vars(result),
        netG=step.sampler().eval(),
        images_seen=result.steps * step.global_batch,
        netD=nets.netD.eval(),
        labeled=labeled,
    )


def _labeled_batches(
    config: Config,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    device: torch.device,
    low: float,
) -> LabeledBatches | None:
    """The semi-supervised GAN's few labeled images (semi_supervised.labels_per_class a class)."""
    per_class = config.semi_supervised.labels_per_class
    if per_class is None:
        return None
    if labels is None or len(labels) != len(images):
        raise ValueError(
            f"semi_supervised.labels_per_class = {per_class} needs one label per image"
        )
    rows = labeled_indices(labels, per_class, config.seed)
    return LabeledBatches(
        images[rows].to(device), labels[rows].to(device), config.batch_size, config.seed, low
    )
