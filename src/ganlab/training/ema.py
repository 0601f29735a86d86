"""The exponential moving average (EMA) of G, and the BatchNorm statistics it samples with.

The EMA's weights are an average over thousands of steps, but BatchNorm's running statistics
are the live G's: they describe another network's activations. Before the EMA generator is
sampled from (scored, drawn, saved) its statistics are measured on its own activations, as
BigGAN's "standing statistics" do, from a seeded noise draw of its own: a pure function of the
EMA's weights, so training, resume and every score stay reproducible.
"""

from __future__ import annotations

import torch
from torch import nn

from ganlab import sampling
from ganlab.config import Config, EmaSection
from ganlab.device import Precision

STANDING_SAMPLES = 5000  # fakes the statistics are measured on (under 1 s for the default G)
STANDING_SEED_OFFSET = 3  # its own noise: not the grids', evaluate's (+1) or the monitor's (+2)


@torch.no_grad()
def update_ema_(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * net for weights; buffers (BatchNorm stats) copied."""
    torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), net.buffers(), strict=True):
        ema_buffer.copy_(buffer)


def ema_decay_at(ema: EmaSection, g_updates: int) -> float:
    """ema.decay, warmed up (ema.warmup) as TensorFlow's ExponentialMovingAverage does over
    its updates: min(decay, (1 + n) / (10 + n)) after n G updates (not D steps: with
    n_critic 5 that would end the warm-up five times early), so the average follows G early
    instead of dragging its random initial weights through a short run."""
    if not ema.warmup:
        return ema.decay
    return min(ema.decay, (1 + g_updates) / (10 + g_updates))


def batch_norms(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def standing_statistics_(
    generator: nn.Module, config: Config, device: torch.device, precision: Precision
) -> nn.Module:
    """The generator in eval mode, its BatchNorm statistics measured on STANDING_SAMPLES fakes
    of its own (the mean over batches, not a momentum average); unchanged without BatchNorm.

    SyncBatchNorm (DDP with train.sync_batchnorm) keeps G's copied statistics: in train mode it
    all-reduces across ranks, and only rank 0 samples, so measuring would hang the run."""
    norms = batch_norms(generator)
    if any(isinstance(norm, nn.SyncBatchNorm) for norm in norms):
        return generator.eval()
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
    if norms:
        generator.train()
        sampling.generate(
            generator,
            STANDING_SAMPLES,
            z_dim=config.z_dim,
            latent=config.latent,
            seed=config.seed + STANDING_SEED_OFFSET,
            device=device,
            precision=precision,
        )
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return generator.eval()
