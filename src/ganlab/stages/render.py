"""Stage `render`: the final sample grid, the training progression (strip + GIF), loss curves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ganlab import checkpoint, figures, sampling, snapshots, tracking
from ganlab.config import flatten
from ganlab.data.datasets import load_images
from ganlab.data.domains import load_domains
from ganlab.device import pick_device, resolve_precision
from ganlab.io import write_json
from ganlab.models import translates
from ganlab.stages import StageError, add_generator_arguments, parser, run_stage
from ganlab.training import params
from ganlab.training.losses import LOSSES


def main() -> None:
    arguments = parser(__doc__)
    add_generator_arguments(arguments)
    arguments.add_argument("--progress", type=Path, required=True, help="frames from train")
    arguments.add_argument("--history", type=Path, required=True, help="loss history CSV")
    arguments.add_argument("--mlflow-run", type=Path, required=True, help="MLflow run id JSON")
    arguments.add_argument("--out", type=Path, required=True, help="folder for the pictures")
    arguments.add_argument("--info", type=Path, required=True, help="provenance JSON to write")
    arguments.add_argument("--quality", type=Path, help="classifier-FID-during-training CSV")
    arguments.add_argument("--fid-history", type=Path, help="FID-during-training CSV")
    arguments.add_argument(
        "--data", type=Path, help="data root: real images beside the fakes, translators' inputs"
    )
    args = arguments.parse_args()
    config = params.load(args.params)
    generator = snapshots.generator_path(
        config.evaluate.checkpoint,
        config.evaluate.epoch,
        args.generator,
        args.best_generator,
        args.snapshots,
    )
    run_id = tracking.run_for_params(
        tracking.read_run_id(args.mlflow_run), flatten(config), f"{config.model}-render"
    )
    grids = figures.read_frames(args.progress)
    history = pd.read_csv(args.history)
    translator = translates(config.model)
    if translator and args.data is None:
        raise StageError("--data is missing: translation models render test-split inputs")
    with tracking.open_run(run_id):
        device = pick_device()
        precision = resolve_precision(config.precision, device)
        draw = _translations if translator else _samples
        names, side = draw(args, config, generator, history, device, precision)
        names += figures.progress_pictures(grids, side, config.render.frame_ms, args.out)
        gan_loss = LOSSES[params.gan_loss(config)]
        names += figures.loss_curves(history, gan_loss, translator, args.out)
        for name in names:
            tracking.log_artifact(args.out / name, "render")
        ran_on = {"device": device.type, "precision": precision.name}
        write_json(args.info, ran_on | {"generator": str(generator), "pictures": names})
        tracking.set_tags({f"render_{key}": value for key, value in ran_on.items()})
        grid = "translations.png" if translator else "samples.png"  # beside other runs' grids
        tracking.log_image(args.out / grid, grid[:-4], checkpoint.load(generator).get("step", 0))
        tracking.log_artifact(args.out / grid)  # top level: the run comparison previews it
        print(f"pictures in {args.out}; {tracking.run_url(run_id)}")


def _samples(args, config, generator: Path, history, device, precision) -> tuple[list[str], int]:
    """A noise-to-image G's samples (beside real images), and the quality curves."""
    netG, saved = sampling.load_generator(generator, device)
    samples, names = figures.sample_grids(
        netG,
        saved,
        n_samples=config.render.n_samples,
        nrow=config.render.nrow,
        seed=config.seed,
        device=device,
        precision=precision,
        out=args.out,
    )
    if args.data is not None:
        real, _ = load_images(
            config.dataset, args.data, train=True, limit=len(samples), size=config.image_size
        )
        names += figures.real_beside_fake(real, samples, config.render.nrow, args.out)
    names += figures.quality_curves(args.quality, args.fid_history, args.out)
    return names, saved["spec"]["image_shape"][1]


def _translations(args, config, generator: Path, history, device, precision):
    """A translator's rows of input | translation | reconstruction | target on test inputs."""
    generators, saved = sampling.load_translator(generator, device)
    task = load_domains(config, args.data, train=False, limit=config.render.nrow)
    names = figures.translation_pictures(
        generators,
        task.source,
        task.target if task.paired else None,
        history,
        model=config.model,
        device=device,
        precision=precision,
        out=args.out,
    )
    return names, saved["spec"]["side"]


if __name__ == "__main__":
    run_stage(main)
