"""Issue 41's levers step for step: the recipe against each lever and their combination, the
same G updates and the same seeds each, scored with Inception FID (and KID) at fixed steps.

Each setting trains as benchmarks/gpu_sweep.py trains (all at once on a GPU, one at a time on
a CPU), keeping its generator every --every steps; every kept generator is then scored with
the evaluate stage's Inception path against the fid_stats stage's reference (make it 10,000
images first: `dvc repro fid_stats -S fid.n_real=10000` is what FID-10k means here). Prints
the table (mean of the seeds, and each seed) and, with --record, appends one row per setting
to reports/results/levers.json, which docs/results/levers.md's table is generated from.

    python benchmarks/levers.py --max-steps 30000 --every 10000       # one GPU: ~10 minutes
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganlab import results
from ganlab.config import FidSection
from ganlab.data import datasets
from ganlab.device import cpu_model, pick_device
from ganlab.metrics import fid, registry
from ganlab.metrics.features import Features, inception_features, inception_network
from ganlab.training.params import from_mapping
from gpu_sweep import fakes_by_step, run_all, sweep_params

TABLE = "levers"
# Each lever as `dvc exp run -S` keys, at its paper's setting where one carries over.
LEVERS: dict[str, dict[str, Any]] = {
    "recipe": {},
    "self-modulation": {"g.self_modulation": True},
    "progressive augmentation": {
        "regularize.progressive_bits": 2,
        "regularize.progressive_every": 10000,
    },
    "top-k": {"g.topk": 0.5},
    "lazy R1, D without BatchNorm": {
        "regularize.r1_weight": 0.1,
        "regularize.r1_every": 16,
        "d.norm": "none",
    },
}
LEVERS["all four"] = {k: v for change in LEVERS.values() for k, v in change.items()}


def jobs_for(args: argparse.Namespace) -> list[tuple[str, int, dict]]:
    """(setting, seed, params) for every setting and seed, each checked before any training."""
    jobs = []
    for name in args.only or list(LEVERS):
        for seed in args.seeds:
            params = sweep_params(args.preset, LEVERS[name] | {"seed": seed}, args)
            from_mapping(params)
            jobs.append((name, seed, params))
    return jobs


def reference(stats: Path, features: Path, n_fake: int) -> tuple[dict, np.ndarray]:
    """The fid_stats stage's reference, refused unless it holds as many images as the fakes."""
    saved = fid.load_stats(stats)
    real = fid.load_features(features)
    if len(real) != n_fake:
        raise SystemExit(
            f"{stats}: statistics of {len(real):,} images, not {n_fake:,}: run "
            f"`dvc repro fid_stats -S fid.n_real={n_fake}` (or pass --n-fake {len(real)})"
        )
    return saved, real


def score(jobs: list[tuple[str, int, dict]], args, folder: Path) -> list[dict[str, Any]]:
    """Inception FID and KID of every kept generator: one row per setting, seed and step."""
    device = torch.device(args.device)
    real_stats, real_features = reference(args.stats, args.features, args.n_fake)
    fid_section = FidSection(precision="fp32", batch_size=args.fid_batch)
    network = inception_network(fid_section, device)
    images, _ = datasets.load_images(jobs[0][2]["dataset"], args.data, train=False)
    shape = (tuple(images.shape[1:]), 10)  # the images' shape; classes, as gpu_sweep builds
    rows = []
    for index, (name, seed, params) in enumerate(jobs):
        saved = torch.load(folder / str(index), weights_only=True)
        label = f"{name} (seed {seed})"
        kept = fakes_by_step(label, params, saved, shape, args.n_fake, args.fake_seed, device)
        for step, fakes in kept:
            fake_features, _ = inception_features(fakes, network, fid_section, device, name)
            features = Features(
                fake_inception=fake_features, real_inception=real_features, real_stats=real_stats
            )
            values = registry.score(features, ("fid", "kid"))
            rows.append({"setting": name, "seed": seed, "step": step, **values})
    return rows


def summary(rows: list[dict[str, Any]], steps: list[int]) -> list[dict[str, Any]]:
    """One row per setting: the mean FID over the seeds at each step, and each seed's."""
    table = []
    for name in dict.fromkeys(r["setting"] for r in rows):
        row: dict[str, Any] = {"setting": name}
        for step in steps:
            values = [r["fid"] for r in rows if r["setting"] == name and r["step"] == step]
            row[f"fid_{step}"] = round(float(np.mean(values)), 2) if values else None
            row[f"seeds_{step}"] = " / ".join(f"{v:.2f}" for v in values)
        table.append(row)
    return table


def columns(steps: list[int], n_fake: int) -> dict[str, str]:
    names = {"setting": "setting"}
    for step in steps:
        names[f"fid_{step}"] = f"FID-{n_fake // 1000}k at {step:,} (mean)"
        names[f"seeds_{step}"] = "each seed"
    return names


def print_table(table: list[dict[str, Any]], names: dict[str, str]) -> None:
    print("| " + " | ".join(names.values()) + " |")
    print("|" + " --- |" * len(names))
    for row in table:
        print("| " + " | ".join(str(row[key]) for key in names) + " |")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--data", type=Path, default=Path("data/raw"))
    arguments.add_argument("--stats", type=Path, default=Path("data/fid_stats.npz"))
    arguments.add_argument("--features", type=Path, default=Path("data/fid_features.npy"))
    arguments.add_argument("--preset", default="fashion_30min_fp32")
    arguments.add_argument("--only", nargs="*", choices=list(LEVERS), help="default: all")
    arguments.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    arguments.add_argument("--max-steps", type=int, default=30000, help="every run's length")
    arguments.add_argument("--seconds", type=float, default=3600, help="a safety clock a run")
    arguments.add_argument("--every", type=int, default=10000, help="steps between scored Gs")
    arguments.add_argument("--n-fake", type=int, default=10000)
    arguments.add_argument("--fake-seed", type=int, default=43, help="the fakes' noise")
    arguments.add_argument("--fid-batch", type=int, default=50)
    arguments.add_argument("--precision", default="fp32", help="the runs' training precision")
    arguments.add_argument("--device", default=str(pick_device()))
    arguments.add_argument("--parallel", type=int, help="runs at a time (GPU: all; CPU: 1)")
    arguments.add_argument("--record", action="store_true", help="append to reports/results")
    args = arguments.parse_args()
    jobs = jobs_for(args)
    datasets.verify(jobs[0][2]["dataset"], args.data)
    reference(args.stats, args.features, args.n_fake)  # before any training
    if args.parallel is None:
        args.parallel = len(jobs) if args.device.startswith("cuda") else 1
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_model()
    print(f"{where}, torch {torch.__version__}; {args.preset}, {len(jobs)} runs\n", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        run_all([(f"{name} {seed}", params) for name, seed, params in jobs], args, Path(tmp))
        rows = score(jobs, args, Path(tmp))
    steps = sorted({r["step"] for r in rows if r["step"] % args.every == 0})
    table, names = summary(rows, steps), columns(steps, args.n_fake)
    print_table(table, names)
    if args.record:
        command = "python benchmarks/levers.py " + " ".join(sys.argv[1:])
        results.record_rows(TABLE, names, table, command)


if __name__ == "__main__":
    main()
