"""How a conditional G takes its label: [z, embed(y)] (concat) against z * embed(y) (multiply).

Trains the `acgan` preset (or `--preset cgan_projection`, `--set` overrides as `dvc exp run -S`)
on Fashion-MNIST for the same steps and seed with each `label_input`, then draws 64 images of
every class from the same noise and prints, side by side with the training images' own figure:
the within-class spread (mean pixel distance between two images of one class; a G that drops z
draws one image a class, spread near 0) and the share the domain classifier puts in the class
asked for. Needs `dvc repro classifier` (data/raw, data/classifier.pt):

    python benchmarks/label_input.py                      # 2,500 steps each, ~5 min on 2 cores
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import yaml

from experiments import REPO, preset_params  # benchmarks/ is a folder of scripts
from ganlab.data import datasets
from ganlab.device import cpu_model, resolve_precision
from ganlab.images import scale_batch, to_uint8
from ganlab.metrics import classifier
from ganlab.models import pixel_low
from ganlab.models.conditional import LABEL_INPUTS, forward_generator
from ganlab.training.gan import train
from ganlab.training.params import from_mapping

CPU = torch.device("cpu")
FP32 = resolve_precision("fp32", CPU)
PER_CLASS = 64  # images drawn per class


def params_with(preset: str, overrides: dict) -> dict:
    """The preset's params with no in-training scoring, fp32 and no EMA: the live generator
    after exactly these steps."""
    as_trained = {"train.eval_every": None, "precision": "fp32", "ema.decay": None}
    return preset_params(preset, {**as_trained, **overrides})


def within_class_spread(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean L2 distance between two different images of one class ([-1, 1] pixels), averaged
    over the classes: 0 when every image of a class is the same."""
    spreads = []
    for label in labels.unique():
        x = scale_batch(images[labels == label]).flatten(1).double()
        n = len(x)
        spreads.append(torch.cdist(x, x).sum() / (n * (n - 1)))
    return float(torch.stack(spreads).mean())


def per_class(images: torch.Tensor, labels: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
    """The first n images of each class."""
    rows = torch.cat([torch.nonzero(labels == c).flatten()[:n] for c in labels.unique()])
    return images[rows], labels[rows]


def drawn(netG: torch.nn.Module, z_dim: int, n_classes: int) -> tuple[torch.Tensor, ...]:
    """PER_CLASS uint8 images of each class, every class from the same seeded noise."""
    noise = torch.randn(PER_CLASS, z_dim, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(n_classes).repeat_interleave(PER_CLASS)
    with torch.no_grad():
        images = forward_generator(netG.eval(), noise.repeat(n_classes, 1), labels)
    return to_uint8(images, pixel_low(netG)), labels


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--data", type=Path, default=REPO / "data" / "raw")
    arguments.add_argument("--classifier", type=Path, default=REPO / "data" / "classifier.pt")
    arguments.add_argument("--preset", default="acgan")
    arguments.add_argument("--steps", type=int, default=2500)
    arguments.add_argument(
        "--set", action="append", default=[], help="key=value (YAML value), as dvc exp run -S"
    )
    args = arguments.parse_args()
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    overrides["train.max_steps"] = args.steps
    judge = classifier.load(args.classifier, CPU)
    threads = torch.get_num_threads()
    print(f"CPU: {cpu_model()}, {threads} threads; {args.preset}, {args.steps} steps each")
    print("| G's label input | within-class spread | classifier: asked-for class | train s |")
    print("| --- | ---: | ---: | ---: |")
    images, labels = None, None
    for label_input in LABEL_INPUTS:
        config = from_mapping(
            params_with(args.preset, {**overrides, "classes.label_input": label_input})
        )
        if images is None:
            images, labels = datasets.load_images(config.dataset, args.data, train=True)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            result = train(
                config,
                images,
                labels,
                device=CPU,
                precision=FP32,
                checkpoint_path=Path(folder) / "checkpoint.pt",
                run_id="label-input",
            )
        seconds = time.perf_counter() - started
        fakes, asked = drawn(result.netG, config.z_dim, judge.n_classes)
        accuracy = classifier.accuracy(judge, fakes, asked, device=CPU)
        spread = within_class_spread(fakes, asked)
        print(f"| {label_input} | {spread:.2f} | {accuracy:.3f} | {seconds:.0f} |", flush=True)
    real = within_class_spread(*per_class(images, labels, PER_CLASS))
    print(f"| training images | {real:.2f} | | |")


if __name__ == "__main__":
    main()
