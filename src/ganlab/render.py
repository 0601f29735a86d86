"""Pictures people would rather look at than read: sample grids, progress GIFs, loss curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from PIL import Image
from torchvision.utils import make_grid, save_image

from ganlab.io import atomic_path


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


def save_curves(
    history: pd.DataFrame, labels: Mapping[str, str], path: str | Path, title: str, ylabel: str
) -> None:
    """Line plot of history columns (column -> legend label) against the training step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    for column, label in labels.items():
        axes.plot(history["step"], history[column], label=label, linewidth=1.2)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
