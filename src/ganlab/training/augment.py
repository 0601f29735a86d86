"""DiffAugment (Zhao et al., 2020): differentiable augmentations applied to every image D sees.

Real and generated images get the same random transformations, and gradients flow
through them to G, so D can't memorise a small training set. Ported from the
authors' PyTorch code (translation, cutout, color), vectorised over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def rand_color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (
        torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2
    ) + mean  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (
        torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5
    ) + mean  # contrast


def rand_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size, filling with zeros."""
    n, _, height, width = x.shape
    shift_x, shift_y = int(height * ratio + 0.5), int(width * ratio + 0.5)
    translation_x = torch.randint(-shift_x, shift_x + 1, size=[n, 1, 1], device=x.device)
    translation_y = torch.randint(-shift_y, shift_y + 1, size=[n, 1, 1], device=x.device)
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(n, device=x.device),
        torch.arange(height, device=x.device),
        torch.arange(width, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + translation_x + 1, 0, height + 1)
    grid_y = torch.clamp(grid_y + translation_y + 1, 0, width + 1)
    padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return padded.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)


def rand_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of `ratio` times the image size in each image."""
    n, _, height, width = x.shape
    size_x, size_y = int(height * ratio + 0.5), int(width * ratio + 0.5)
    offset_x = torch.randint(0, height + (1 - size_x % 2), size=[n, 1, 1], device=x.device)
    offset_y = torch.randint(0, width + (1 - size_y % 2), size=[n, 1, 1], device=x.device)
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(n, device=x.device),
        torch.arange(size_x, device=x.device),
        torch.arange(size_y, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + offset_x - size_x // 2, min=0, max=height - 1)
    grid_y = torch.clamp(grid_y + offset_y - size_y // 2, min=0, max=width - 1)
    mask = torch.ones(n, height, width, dtype=x.dtype, device=x.device)
    mask[grid_batch, grid_x, grid_y] = 0
    return x * mask.unsqueeze(1)


AUGMENTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": rand_color,
    "translation": rand_translation,
    "cutout": rand_cutout,
}


def diff_augment(x: torch.Tensor, policy: Sequence[str]) -> torch.Tensor:
    """Apply the named augmentations in order (the paper's: color, translation, cutout)."""
    for name in policy:
        x = AUGMENTATIONS[name](x)
    return x


def progressive_bits(x: torch.Tensor, bits: int, active: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Progressive augmentation (Zhang & Khoreva, "Progressive Augmentation of GANs", NeurIPS
    2019): x with `bits` channels more, the first `active` each one random bit per image as a
    constant map of 0 or 1, the rest 0 (bits not yet in use); and each image's sign, -1 where
    the active bits' XOR is 1: D's real/fake target flips there, so D must read the bits.

    0/1 as the authors' code has it: an image whose bits are all 0 reaches D as before, and with
    the bits' weights starting at 0 (models.zero_bit_inputs_) D's verdict is unchanged at the
    step a bit enters."""
    n, _, height, width = x.shape
    values = torch.zeros(n, bits, device=x.device, dtype=x.dtype)
    sign = torch.ones(n, device=x.device)
    if active:
        drawn = torch.randint(0, 2, (n, active), device=x.device)
        values[:, :active] = drawn.to(x.dtype)
        sign = 1 - 2 * (drawn.sum(dim=1) % 2).float()
    maps = values[:, :, None, None].expand(n, bits, height, width)
    return torch.cat([x, maps], dim=1).contiguous(memory_format=_layout(x)), sign


def _layout(x: torch.Tensor) -> torch.memory_format:
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format
