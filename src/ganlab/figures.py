"""The pictures of a finished run: sample grids, the progress strip and GIF, training curves.

Each function writes its PNGs (or GIF) into `out` and returns their file names, so the
render stage can log them; nothing here reads params or talks to MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torchvision.io import decode_png, read_file

from ganlab import images, plots, sampling, snapshots
from ganlab.device import Precision
from ganlab.errors import GanlabError
from ganlab.training.losses import GANLoss

GRID_PADDING = 2
FRAME_GLOB = "step_*.png"  # train's progress frames in reports/progress


def frame_name(step: int) -> str:
    """A progress frame's file: names sort by the step the frame shows."""
    return f"step_{step:07d}.png"


def read_frames(progress: Path) -> list[torch.Tensor]:
    """The fixed-noise grids train saved (step 0, then by epoch or render.frame_every), in
    order, as uint8 C x H x W tensors."""
    paths = sorted(progress.glob(FRAME_GLOB))
    if not paths:
        raise GanlabError(
            f"{progress} holds no {FRAME_GLOB} frames: expected the train stage's output"
        )
    return [decode_png(read_file(str(path))) for path in paths]


def real_beside_fake(real: torch.Tensor, fakes: torch.Tensor, nrow: int, out: Path) -> list[str]:
    """Training images beside the generator's: real.png and real_vs_fake.png."""
    images.save_grid(real, out / "real.png", nrow=nrow)
    real_grid, fake_grid = images.grid(real, nrow), images.grid(fakes, nrow)
    gap = torch.full(
        (real_grid.shape[0], real_grid.shape[1], 4 * GRID_PADDING), 255, dtype=torch.uint8
    )
    images.save_image_tensor(
        torch.cat([real_grid, gap, fake_grid], dim=2), out / "real_vs_fake.png"
    )
    return ["real.png", "real_vs_fake.png"]


def quality_curves(quality: Path | None, fid_history: Path | None, out: Path) -> list[str]:
    """Classifier FID by step and Inception FID by minutes of training, where scored."""
    names = []
    for path, column, label, x, name in (
        (quality, "classifier_fid", "classifier FID", "step", "quality.png"),
        (fid_history, "fid", "FID (train.fid_samples fakes)", "minutes", "fid_over_time.png"),
    ):
        table = pd.read_csv(path) if path is not None and path.is_file() else None
        if table is None or table.empty:
            continue
        title = f"{label} during training (lower is better)"
        plots.save_curves(table, {column: label}, out / name, title, label, x=x)
        names.append(name)
    return names


def progress_pictures(grids: list[torch.Tensor], side: int, frame_ms: int, out: Path) -> list[str]:
    """The first row of every frame stacked (one row per frame), and the frames as a GIF."""
    row_height = side + 2 * GRID_PADDING
    strip = torch.cat([g[:, :row_height] for g in grids], dim=1)
    images.save_image_tensor(strip, out / "progress.png")
    images.save_gif(grids, out / "progress.gif", frame_ms=frame_ms)
    return ["progress.png", "progress.gif"]


def loss_curves(history: pd.DataFrame, gan_loss: GANLoss, translator: bool, out: Path) -> list[str]:
    """Losses and D's outputs by step; mean losses (and D's accuracy) per epoch."""
    plots.save_curves(
        history, {"d_loss": "D loss", "g_loss": "G loss"}, out / "losses.png", "Losses", "loss"
    )
    seen = (
        ("D(real)", "D(G(x)) in D's step", "D(G(x)) in G's step")
        if translator
        else ("D(x)", "D(G(z)) before D's update", "D(G(z)) after")
    )
    labels = dict(zip(("d_real", "d_fake_d_step", "d_fake_g_step"), seen, strict=True))
    title = "Discriminator outputs" if gan_loss.probability else "Critic scores"
    plots.save_curves(history, labels, out / "d_outputs.png", title, gan_loss.d_output_label)
    by_epoch = snapshots.per_epoch_means(history)  # log rows weighted by their steps
    plots.save_curves(
        by_epoch,
        {"d_loss": "D loss", "g_loss": "G loss"},
        out / "epoch_losses.png",
        "Mean losses per epoch",
        "loss",
        x="epoch",
    )
    names = ["losses.png", "d_outputs.png", "epoch_losses.png"]
    if gan_loss.probability and "d_acc_real" in history:
        plots.save_curves(
            by_epoch,
            {"d_acc_real": "real called real", "d_acc_fake": "fake called fake"},
            out / "d_accuracy.png",
            "Discriminator accuracy per epoch (D(x) > 0.5 is real)",
            "fraction",
            x="epoch",
        )
        names.append("d_accuracy.png")
    return names


def sample_grids(
    netG: nn.Module,
    saved: dict[str, Any],
    *,
    n_samples: int,
    nrow: int,
    seed: int,
    device: torch.device,
    precision: Precision,
    out: Path,
) -> tuple[torch.Tensor, list[str]]:
    """samples.png of `n_samples` fakes, and for a conditional G class_grid.png, one row per
    class; (the samples, the file names)."""
    draw = dict(
        z_dim=saved["spec"]["z_dim"],
        latent=saved["latent"],
        seed=seed,
        device=device,
        precision=precision,
    )
    samples = sampling.generate(netG, n_samples, **draw)
    images.save_grid(samples, out / "samples.png", nrow=nrow)
    classes = sampling.n_classes(netG)
    if not classes:
        return samples, ["samples.png"]
    labels = torch.arange(classes).repeat_interleave(nrow)
    class_grid = sampling.generate(netG, classes * nrow, **draw, labels=labels)
    images.save_grid(class_grid, out / "class_grid.png", nrow=nrow)
    return samples, ["samples.png", "class_grid.png"]


def translation_pictures(
    generators: dict[str, nn.Module],
    source: torch.Tensor,
    target: torch.Tensor | None,
    history: pd.DataFrame,
    *,
    model: str,
    device: torch.device,
    precision: Precision,
    out: Path,
) -> list[str]:
    """Rows of input | translation | reconstruction | target, and the reconstruction curves."""
    rows = sampling.example_rows(generators, source, target, device=device, precision=precision)
    columns = sampling.n_columns(model, target is not None)
    images.save_grid(rows, out / "translations.png", nrow=columns)
    curves = (
        {"recon_l1": "cycle L1", "identity_l1": "identity L1"}
        if "F" in generators
        else {"recon_l1": "L1 to target"}
    )
    plots.save_curves(
        history,
        curves,
        out / "reconstruction.png",
        "Reconstruction",
        "mean |difference| in [-1, 1] units",
    )
    return ["translations.png", "reconstruction.png"]
