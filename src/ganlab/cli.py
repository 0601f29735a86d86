"""The `ganlab` command: sample and interpolate from any trained generator, rank runs by FID.

A generator is named by a checkpoint file (`--checkpoint models/generator.pt`), an MLflow
run (`--run ID`) or a registered model (`--model NAME`, `NAME/3`, `NAME@alias`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ganlab.errors import USER_ERRORS, GanlabError


class CLIError(GanlabError, RuntimeError):
    """A command's arguments or sources don't work."""


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="a generator.pt written by the train stage")
    source.add_argument("--run", help="an MLflow run id")
    source.add_argument(
        "--model",
        help="a registered model: models:/NAME/VERSION, models:/NAME@ALIAS or NAME (latest)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent draw")
    parser.add_argument("--nrow", type=int, default=8, help="images per grid row")
    parser.add_argument(
        "--class",
        dest="label",
        type=int,
        help="conditional models: draw this class index (default: every class in turn)",
    )


def _load(args: argparse.Namespace, device: torch.device):
    from ganlab.sampling import TranslatorFileError, build_generator, load_generator

    try:
        if args.checkpoint:
            if not args.checkpoint.is_file():
                raise CLIError(f"{args.checkpoint} does not exist: expected a generator.pt")
            return load_generator(args.checkpoint, device)
        from ganlab import tracking

        tracking.connect()
        run_id = args.run or tracking.model_run(args.model)
        weights, metadata = tracking.load_generator_weights(run_id)
        return build_generator(metadata, weights, device, f"run {run_id}")
    except TranslatorFileError as error:
        raise CLIError(str(error)) from error


def _class_labels(
    netG: torch.nn.Module, n: int, args: argparse.Namespace, default: int | None = None
) -> torch.Tensor | None:
    """Labels for n images: --class for a conditional G, else `default` (None: every class)."""
    from ganlab.sampling import class_labels, n_classes

    if not n_classes(netG):
        if args.label is not None:
            raise CLIError(f"--class {args.label}: this generator is not class-conditional")
        return None
    label = args.label if args.label is not None else default
    try:
        return class_labels(netG, n, None if label is None else torch.tensor(label))
    except ValueError as error:
        raise CLIError(f"--class: {error}") from error


def sample(args: argparse.Namespace) -> None:
    from ganlab.device import pick_device, resolve_precision
    from ganlab.images import save_grid, save_image_tensor
    from ganlab.sampling import generate

    device = pick_device()
    netG, saved = _load(args, device)
    images = generate(
        netG,
        args.n,
        z_dim=saved["spec"]["z_dim"],
        latent=saved["latent"],
        seed=args.seed,
        device=device,
        precision=resolve_precision("auto", device),
        labels=_class_labels(netG, args.n, args),
    )
    if args.out:
        save_grid(images, args.out, nrow=args.nrow)
        print(f"{args.n} samples -> {args.out}")
    if args.individual:
        for i, image in enumerate(images):
            save_image_tensor(image, args.individual / f"{args.seed}_{i:05d}.png")
        print(f"{args.n} PNGs -> {args.individual}")


def interpolate(args: argparse.Namespace) -> None:
    from ganlab.device import pick_device, resolve_precision
    from ganlab.images import grid, save_gif, save_grid, to_uint8
    from ganlab.interpolation import latent_path
    from ganlab.models import pixel_low
    from ganlab.models.conditional import forward_generator

    if len(args.seeds) < 2:
        raise CLIError(f"--seeds needs at least two seeds, got {args.seeds}")
    device = pick_device()
    netG, saved = _load(args, device)
    z = latent_path(args.seeds, args.steps, saved["spec"]["z_dim"], saved["latent"], args.method)
    # a conditional G walks with its class held fixed (--class, or class 0)
    labels = _class_labels(netG, len(z), args, default=0)
    with torch.no_grad(), resolve_precision("auto", device).autocast(device):
        images = to_uint8(
            forward_generator(netG, z.to(device), None if labels is None else labels.to(device)),
            pixel_low(netG),
        ).cpu()
    save_grid(images, args.out, nrow=args.steps)
    print(f"{len(args.seeds) - 1} walks of {args.steps} steps ({args.method}) -> {args.out}")
    if args.gif:
        # frame t shows step t of every walk; the animation goes there and back
        walks = images.view(len(args.seeds) - 1, args.steps, *images.shape[1:])
        order = [*range(args.steps), *range(args.steps - 2, 0, -1)]
        frames = [grid(walks[:, t], nrow=len(walks)) for t in order]
        save_gif(frames, args.gif, frame_ms=args.frame_ms)
        print(f"animation -> {args.gif}")


def leaderboard(args: argparse.Namespace) -> None:
    from ganlab import tracking
    from ganlab.leaderboard import leaderboard_table, to_markdown

    table = leaderboard_table(tracking.runs_frame())
    if args.top:
        table = table.head(args.top)
    print(table.to_string(index=False) if len(table) else "no finished runs with an FID yet")
    if args.csv:
        from ganlab.io import atomic_path

        with atomic_path(args.csv) as tmp:
            table.to_csv(tmp, index=False)
        print(f"-> {args.csv}")
    if args.markdown:
        from ganlab.io import write_text

        write_text(args.markdown, to_markdown(table))
        print(f"-> {args.markdown}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganlab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser(
        "sample", help="draw N images from a generator", description=sample.__doc__
    )
    _add_source(p)
    p.add_argument("-n", "--n", type=int, default=64, help="how many images")
    p.add_argument("--out", type=Path, help="grid PNG to write")
    p.add_argument("--individual", type=Path, help="folder for one PNG per image")
    p.set_defaults(handler=sample)

    p = commands.add_parser("interpolate", help="walk the latent space between seeds")
    _add_source(p)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="latent endpoints")
    p.add_argument("--steps", type=int, default=8, help="images per walk")
    p.add_argument("--method", choices=["linear", "slerp"], default="slerp")
    p.add_argument("--out", type=Path, required=True, help="grid PNG, one row per walk")
    p.add_argument("--gif", type=Path, help="animated GIF of the walk")
    p.add_argument("--frame-ms", type=int, default=120)
    p.set_defaults(handler=interpolate)

    p = commands.add_parser("leaderboard", help="MLflow runs ranked by FID")
    p.add_argument("--top", type=int, help="show only the best N")
    p.add_argument("--csv", type=Path, help="also write the table as CSV")
    p.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    p.set_defaults(handler=leaderboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sample" and not (args.out or args.individual):
        args.out = Path("samples.png")
    try:
        args.handler(args)
    except USER_ERRORS as error:
        print(f"ganlab: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
