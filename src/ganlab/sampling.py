"""Load a trained generator and draw uint8 images from it, reproducibly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganlab import checkpoint
from ganlab.device import Precision
from ganlab.models import ModelSpec, build_models
from ganlab.train import sample_latent, to_uint8


def load_generator(path: str | Path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The generator saved by the train stage (weights-only), in eval mode, and its metadata."""
    saved = checkpoint.load(path)
    spec_values = dict(saved["spec"])
    spec_values["image_shape"] = tuple(spec_values["image_shape"])
    netG, _ = build_models(saved["model"], ModelSpec(**spec_values), init="default")
    netG.load_state_dict(saved["state_dict"])
    return netG.to(device).eval(), saved


@torch.no_grad()
def generate(
    netG: nn.Module,
    n: int,
    *,
    z_dim: int,
    latent: str,
    seed: int,
    device: torch.device,
    precision: Precision,
    batch_size: int = 500,
) -> torch.Tensor:
    """n uint8 images (CPU) from a seeded latent draw, in batches."""
    noise = torch.Generator().manual_seed(seed)
    images = []
    for start in range(0, n, batch_size):
        z = sample_latent(min(batch_size, n - start), z_dim, latent, torch.device("cpu"), noise)
        with precision.autocast(device):
            images.append(to_uint8(netG(z.to(device))).cpu())
    return torch.cat(images)
