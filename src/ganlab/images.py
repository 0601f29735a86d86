"""Images as every layer uses them: uint8 <-> [-1, 1] floats, latent draws, grids and GIFs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid, save_image

from ganlab.io import atomic_path


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


def to_uint8(images: torch.Tensor, low: float = -1.0) -> torch.Tensor:
    """[low, 1] floats (G's tanh: -1, sigmoid: 0) -> uint8 pixels, rounded as torchvision's
    save_image does."""
    return ((images.float() - low) * (255 / (1 - low)) + 0.5).clamp(0, 255).to(torch.uint8)


def scale_batch(batch: torch.Tensor, low: float = -1.0) -> torch.Tensor:
    """uint8 pixels -> floats in [low, 1]: [-1, 1] for G's tanh output, [0, 1] for sigmoid."""
    return batch.float().div_(255 / (1 - low)).add_(low)


def grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """uint8 N x C x H x W -> one uint8 C x H' x W' grid (torchvision's make_grid)."""
    tiled = make_grid(images.float() / 255, nrow=nrow, padding=2)
    return tiled.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> None:
    """uint8 images -> a PNG grid (torchvision's save_image), written atomically."""
    with atomic_path(path) as tmp:
        save_image(images.float() / 255, tmp, nrow=nrow, format="png")


def _to_pil(image: torch.Tensor) -> Image.Image:
    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def save_image_tensor(image: torch.Tensor, path: str | Path) -> None:
    """One uint8 C x H x W image -> PNG, written atomically."""
    with atomic_path(path) as tmp:
        _to_pil(image).save(tmp, format="PNG")


def save_gif(frames: Sequence[torch.Tensor], path: str | Path, frame_ms: int = 400) -> None:
    """uint8 C x H x W frames -> an animated GIF that loops and holds on the last frame."""
    pictures = [_to_pil(frame) for frame in frames]
    durations = [frame_ms] * (len(pictures) - 1) + [frame_ms * 4]
    with atomic_path(path) as tmp:
        pictures[0].save(
            tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0
        )
