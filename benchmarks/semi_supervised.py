"""The semi-supervised GAN against the same network trained on its labeled images alone.

Trains the `udacity_semi_supervised` preset (or params.yaml alone, `--preset none`), with
`--set` overrides, on Fashion-MNIST from `data/raw` (run `dvc repro download` first), then the
labeled-only baseline: the same D (architecture, init, optimizer, steps, labeled batches)
without the unlabeled images and G. Prints the CPU, both test accuracies on the 10,000 test
images and the times, so the README's table can be reproduced row by row:

    python benchmarks/semi_supervised.py                                  # the preset, ~12 min
    python benchmarks/semi_supervised.py --preset none --set semi_supervised.labels_per_class=100 \\
        --set feature_matching=true --set ema.decay=null --set precision=fp32 --set ndf=64 \\
        --set dropout=0.5 --set lr=0.0003 --set batch_size=128 --set epochs=3   # Udacity's D
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
from ganlab.training import semi_supervised
from ganlab.training.gan import model_spec, train
from ganlab.training.params import from_mapping

CPU = torch.device("cpu")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--data", type=Path, default=REPO / "data" / "raw")
    arguments.add_argument("--preset", default="udacity_semi_supervised", help="or none")
    arguments.add_argument(
        "--set", action="append", default=[], help="key=value (YAML value), as dvc exp run -S"
    )
    args = arguments.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    overrides = {key: yaml.safe_load(value) for key, value in overrides.items()}
    # D's accuracy is the product here, not G's FID: no in-training scoring
    config = from_mapping(preset_params(args.preset, {"train.eval_every": None, **overrides}))
    precision = resolve_precision(config.precision, CPU)
    images, labels = datasets.load_images(config.dataset, args.data, train=True)
    test_images, test_labels = datasets.load_images(config.dataset, args.data, train=False)
    classes = len(datasets.class_names(config.dataset, args.data))
    print(f"{cpu_model()}, {torch.get_num_threads()} threads, {precision.name}")
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        result = train(
            config,
            images,
            labels,
            n_classes=classes,
            device=CPU,
            precision=precision,
            checkpoint_path=Path(scratch) / "resume.pt",
            run_id="benchmark",
        )
        gan_seconds = time.perf_counter() - started
    started = time.perf_counter()
    spec = model_spec(config, tuple(images.shape[1:]), classes)
    baseline = semi_supervised.labeled_only_baseline(
        config, spec, result.labeled, result.steps, device=CPU, precision=precision
    )
    baseline_seconds = time.perf_counter() - started
    low = result.labeled.low
    gan = semi_supervised.test_accuracy(result.netD, test_images, test_labels, device=CPU, low=low)
    alone = semi_supervised.test_accuracy(baseline, test_images, test_labels, device=CPU, low=low)
    print(
        f"| {args.preset} {overrides} | {result.steps} steps | semi-supervised D {gan:.4f} "
        f"({gan_seconds:.0f} s) | labeled only {alone:.4f} ({baseline_seconds:.0f} s) |"
    )


if __name__ == "__main__":
    main()
