"""Stage `render`: the final sample grid, the training progression (strip + GIF), loss curves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torchvision.io import decode_png, read_file

from ganlab import images, plots, sampling, snapshots, tracking
from ganlab.config import flatten
from ganlab.data.datasets import load_images
from ganlab.data.domains import load_domains
from ganlab.device import pick_device, resolve_precision
from ganlab.models import translates
from ganlab.sampling import generate, load_generator, n_classes
from ganlab.stages import (
    FRAME_GLOB,
    StageError,
    add_generator_arguments,
    parser,
    read_run_id,
    run_stage,
)
from ganlab.training import params
from ganlab.training.losses import LOSSES

GRID_PADDING = 2


def _frames(progress: Path) -> list[torch.Tensor]:
    """The fixed-noise grids train saved (step 0, then by epoch or render.frame_every), in
    order, as uint8 C x H x W tensors."""
    paths = sorted(progress.glob(FRAME_GLOB))
    if not paths:
        raise StageError(
            f"{progress} holds no {FRAME_GLOB} frames: expected the train stage's output"
        )
    return [decode_png(read_file(str(path))) for path in paths]


def _real_pictures(args, config, fakes: torch.Tensor, out: Path) -> list[str]:
    """Training images beside the generator's: real.png and real_vs_fake.png."""
    if args.data is None:
        return []
    real, _ = load_images(
        config.dataset, args.data, train=True, limit=len(fakes), size=config.image_size
    )
    nrow = config.render.nrow
    images.save_grid(real, out / "real.png", nrow=nrow)
    real_grid, fake_grid = images.grid(real, nrow), images.grid(fakes, nrow)
    gap = torch.full(
        (real_grid.shape[0], real_grid.shape[1], 4 * GRID_PADDING), 255, dtype=torch.uint8
    )
    images.save_image_tensor(
        torch.cat([real_grid, gap, fake_grid], dim=2), out / "real_vs_fake.png"
    )
    return ["real.png", "real_vs_fake.png"]


def _quality_pictures(args, out: Path) -> list[str]:
    """Classifier FID by step and Inception FID by minutes of training, where scored."""
    names = []
    for path, column, label, x, name in (
        (args.quality, "classifier_fid", "classifier FID", "step", "quality.png"),
        (args.fid_history, "fid", "FID (train.fid_samples fakes)", "minutes", "fid_over_time.png"),
    ):
        table = pd.read_csv(path) if path is not None and path.is_file() else None
        if table is None or table.empty:
            continue
        title = f"{label} during training (lower is better)"
        plots.save_curves(table, {column: label}, out / name, title, label, x=x)
        names.append(name)
    return names


def _training_pictures(
    grids: list[torch.Tensor], history: pd.DataFrame, side: int, config, out: Path
) -> list[str]:
    """Progress strip and GIF from the frames, loss and D-output curves; their names."""
    # The first row of every frame, stacked: one row per frame.
    row_height = side + 2 * GRID_PADDING
    strip = torch.cat([g[:, :row_height] for g in grids], dim=1)
    images.save_image_tensor(strip, out / "progress.png")
    images.save_gif(grids, out / "progress.gif", frame_ms=config.render.frame_ms)
    plots.save_curves(
        history, {"d_loss": "D loss", "g_loss": "G loss"}, out / "losses.png", "Losses", "loss"
    )
    labels = (
        {
            "d_real": "D(real)",
            "d_fake_d_step": "D(G(x)) in D's step",
            "d_fake_g_step": "D(G(x)) in G's step",
        }
        if translates(config.model)
        else {
            "d_real": "D(x)",
            "d_fake_d_step": "D(G(z)) before D's update",
            "d_fake_g_step": "D(G(z)) after",
        }
    )
    gan_loss = LOSSES[params.gan_loss(config)]
    title = "Discriminator outputs" if gan_loss.probability else "Critic scores"
    plots.save_curves(history, labels, out / "d_outputs.png", title, gan_loss.d_output_label)
    names = ["progress.png", "progress.gif", "losses.png", "d_outputs.png"]
    by_epoch = history.groupby("epoch", as_index=False).mean()  # log rows are equal-sized
    plots.save_curves(
        by_epoch,
        {"d_loss": "D loss", "g_loss": "G loss"},
        out / "epoch_losses.png",
        "Mean losses per epoch",
        "loss",
        x="epoch",
    )
    names.append("epoch_losses.png")
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


def render_translator(
    args, config, run_id: str, grids: list[torch.Tensor], history: pd.DataFrame
) -> None:
    """Rows of input | translation | reconstruction | target on held-out inputs, and curves."""
    if args.data is None:
        raise StageError("--data is missing: translation models render test-split inputs")
    with tracking.open_run(run_id):
        device = pick_device()
        generators, saved = sampling.load_translator(args.generator, device)
        task = load_domains(config, args.data, train=False, limit=config.render.nrow)
        rows = sampling.example_rows(
            generators,
            task.source,
            task.target if task.paired else None,
            device=device,
            precision=resolve_precision(config.precision, device),
        )
        out = args.out
        images.save_grid(
            rows, out / "translations.png", nrow=sampling.n_columns(config.model, task.paired)
        )
        names = [
            "translations.png",
            *_training_pictures(grids, history, saved["spec"]["side"], config, out),
        ]
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
        names.append("reconstruction.png")
        for name in names:
            tracking.log_artifact(out / name, "render")
        print(f"pictures in {out}; {tracking.run_url(run_id)}")


def main() -> None:
    arguments = parser(__doc__)
    add_generator_arguments(arguments)
    arguments.add_argument("--progress", type=Path, required=True, help="frames from train")
    arguments.add_argument("--history", type=Path, required=True, help="loss history CSV")
    arguments.add_argument("--mlflow-run", type=Path, required=True, help="MLflow run id JSON")
    arguments.add_argument("--out", type=Path, required=True, help="folder for the pictures")
    arguments.add_argument("--quality", type=Path, help="classifier-FID-during-training CSV")
    arguments.add_argument("--fid-history", type=Path, help="FID-during-training CSV")
    arguments.add_argument(
        "--data", type=Path, help="data root: real images beside the fakes, translators' inputs"
    )
    args = arguments.parse_args()

    config = params.load(args.params)
    args.generator = snapshots.generator_path(
        config.evaluate.checkpoint,
        config.evaluate.epoch,
        args.generator,
        args.best_generator,
        args.snapshots,
    )
    run_id = tracking.run_for_params(
        read_run_id(args.mlflow_run), flatten(config), f"{config.model}-render"
    )
    grids = _frames(args.progress)
    history = pd.read_csv(args.history)
    if translates(config.model):
        render_translator(args, config, run_id, grids, history)
        return

    with tracking.open_run(run_id):
        device = pick_device()
        netG, saved = load_generator(args.generator, device)
        samples = generate(
            netG,
            config.render.n_samples,
            z_dim=saved["spec"]["z_dim"],
            latent=saved["latent"],
            seed=config.seed,
            device=device,
            precision=resolve_precision(config.precision, device),
        )
        out = args.out
        images.save_grid(samples, out / "samples.png", nrow=config.render.nrow)
        names = [
            "samples.png",
            *_real_pictures(args, config, samples, out),
            *_training_pictures(grids, history, saved["spec"]["image_shape"][1], config, out),
            *_quality_pictures(args, out),
        ]
        classes = n_classes(netG)
        if classes:  # conditional G: one row per class
            per_class = config.render.nrow
            class_grid = generate(
                netG,
                classes * per_class,
                z_dim=saved["spec"]["z_dim"],
                latent=saved["latent"],
                seed=config.seed,
                device=device,
                precision=resolve_precision(config.precision, device),
                labels=torch.arange(classes).repeat_interleave(per_class),
            )
            images.save_grid(class_grid, out / "class_grid.png", nrow=per_class)
            names.append("class_grid.png")
        for name in names:
            tracking.log_artifact(out / name, "render")
        print(f"pictures in {out}; {tracking.run_url(run_id)}")


if __name__ == "__main__":
    run_stage(main)
