"""Issue 41's levers step for step: the recipe against each lever and their combination, the
same G updates and the same seeds each, scored with Inception FID (and KID) at fixed steps.

Each setting trains as benchmarks/gpu_sweep.py trains (all at once on a GPU, one at a time on
a CPU), keeping its generator every --every steps; each kept generator is scored with the
evaluate stage's Inception network against the fid_stats stage's seeded draw of --n-real
training images (10,000: FID-10k). A run is scored and, with --record, its rows appended to
reports/results/levers.json as soon as it ends; a setting and seed already recorded there for
the same protocol is not run again. So the table grows across sessions and machines: a 2-core
CPU trains and scores one run in 23-40 minutes, one GPU all twelve in ~10. Runs and Inception
features are kept (--runs, --cache), so a run stopped part way goes on where it stopped.
docs/results/levers.md's tables are generated from the data file (`python -m ganlab.results`).

    python benchmarks/levers.py --record                 # every setting, seeds 42 and 43
    python benchmarks/levers.py --record --seeds 42      # the first seed of each
    python benchmarks/levers.py --draw docs/images/levers.png   # the recorded runs, drawn
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fid_floor import Extractor
from ganlab import results
from ganlab.config import FidSection
from ganlab.data import datasets
from ganlab.device import cpu_model, pick_device
from ganlab.io import atomic_path
from ganlab.metrics import fid, scores
from ganlab.training.params import from_mapping
from gpu_sweep import fakes_by_step, run_all, sweep_params

TABLE = "levers"
COLUMNS = {
    "setting": "setting",
    "seed": "seed",
    "step": "G updates",
    "fid": "Inception FID-10k",
    "kid": "KID",
}  # no steps/s: a CPU's runs share it with whatever else runs over the hours they take
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
# The combination: self-modulation (16.40 against the recipe's 19.40 at seed 42, 2-core AMD EPYC)
# with the one other lever level with the recipe there (top-k, 19.71). Progressive augmentation's
# first form (+-1 bits, bit weights drawn like the rest) made D give up when its first bit entered
# (94.76; the form now is the authors'), lazy R1 without BatchNorm trailed (21.20):
# docs/results/levers.md.
LEVERS["self-modulation + top-k"] = LEVERS["self-modulation"] | LEVERS["top-k"]
# The recipe the levers are measured against: the preset as it was before it and params.yaml
# took self-modulation in (so the runs' params, and the files named by their digest, are those
# recorded before).
BEFORE: dict[str, Any] = {"g.self_modulation": False}

Job = tuple[str, int, dict]  # setting, seed, params


def jobs_for(args: argparse.Namespace) -> list[Job]:
    """(setting, seed, params) for every setting and seed, each checked before any training;
    seed by seed, so that a first seed of every setting comes before any second."""
    jobs = []
    for seed in args.seeds:
        for name in args.only or list(LEVERS):
            params = sweep_params(args.preset, BEFORE | LEVERS[name] | {"seed": seed}, args)
            from_mapping(params)
            jobs.append((name, seed, params))
    return jobs


def protocol(args: argparse.Namespace) -> dict[str, Any]:
    """What makes two runs' rows comparable: the same recipe, length, fakes and reference."""
    keys = ("preset", "max_steps", "every", "n_fake", "n_real", "fake_seed", "precision")
    return {key: getattr(args, key) for key in keys}


def run_file(params: dict) -> str:
    """A run's file name under --cache: its params' digest (another setting: another file)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def recorded(table: dict[str, Any], terms: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the levers table measured under these terms."""
    return [row for row in table["rows"] if row.get("protocol") == terms]


def remaining(jobs: list[Job], done: list[dict[str, Any]]) -> list[Job]:
    """The jobs whose setting and seed no recorded row holds."""
    ran = {(row["setting"], row["seed"]) for row in done}
    return [job for job in jobs if (job[0], job[1]) not in ran]


def reference(args: argparse.Namespace, extract: Extractor, dataset: str) -> np.ndarray:
    """Inception features of the fid_stats stage's draw of --n-real training images (those of
    data/fid_features.npy adopted where its draw is the same, after a check)."""
    images, _ = datasets.load_images(dataset, args.data, train=True)
    drawn, _ = datasets.reference_rows(len(images), args.n_real)
    if len(drawn) < args.n_real:
        raise SystemExit(f"--n-real {args.n_real:,}: {dataset} has {len(images):,} images")
    real = images[drawn]
    if args.known_features.is_file():
        extract.adopt(real, fid.load_features(args.known_features), args.known_features)
    return extract(real, "reference")


def score(
    job: Job, saved: dict, real: np.ndarray, extract: Extractor, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Inception FID and KID of each generator a run kept: one row a step."""
    name, seed, params = job
    mu, sigma = fid.statistics(real)
    shape = (tuple(real_shape(params, args)), 10)  # the images' shape; classes, as gpu_sweep
    rows = []
    label = f"{name} (seed {seed})"
    kept = fakes_by_step(label, params, saved, shape, args.n_fake, args.fake_seed, extract.device)
    for step, fakes in kept:
        if step % args.every and step != args.max_steps:
            continue  # a run's clock stopped it between the steps compared
        features = extract(fakes, f"{label} at {step:,}")
        rows.append(
            {
                "setting": name,
                "seed": seed,
                "step": step,
                "fid": fid.frechet_distance(*fid.statistics(features), mu, sigma),
                "kid": scores.kernel_inception_distance(real, features)[0],
                "protocol": protocol(args),
            }
        )
    return rows


def real_shape(params: dict, args: argparse.Namespace) -> tuple[int, ...]:
    images, _ = datasets.load_images(params["dataset"], args.data, train=False, limit=1)
    return tuple(images.shape[1:])


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the docs show them: one per setting and step, FID's mean over the seeds."""
    return results.mean_over_seeds({"columns": COLUMNS, "rows": rows})["rows"]


def print_table(rows: list[dict[str, Any]]) -> None:
    names = results.mean_over_seeds({"columns": COLUMNS, "rows": []})["columns"]
    print("| " + " | ".join(names.values()) + " |")
    print("|" + " --- |" * len(names))
    for row in rows:
        print("| " + " | ".join(results.cell(row.get(key)) for key in names) + " |")


def draw(rows: list[dict[str, Any]], path: Path) -> None:
    """Each setting's FID at its last step compared: a dot a seed, a bar at their mean, a line at
    the recipe's mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = max(row["step"] for row in rows)
    rows = [row for row in rows if row["step"] == last]
    names = list(dict.fromkeys(row["setting"] for row in rows))
    fids = {name: [row["fid"] for row in rows if row["setting"] == name] for name in names}
    recipe = fids.get("recipe", [])
    means = {name: np.mean(values) for name, values in fids.items()}
    # a collapsed run would squeeze the rest: the axis ends at twice the recipe's FID
    end = 2 * np.mean(recipe) if recipe else max(means.values()) * 1.15
    figure, axes = plt.subplots(figsize=(8, 0.8 + 0.6 * len(names)), dpi=100)
    for y, name in enumerate(names):
        values = fids[name]
        axes.barh(y, min(means[name], end), color="tab:blue" if name == "recipe" else "tab:gray")
        axes.plot([min(v, end) for v in values], [y] * len(values), "o", color="black", ms=4)
        where, align = (end, "right") if means[name] > end else (means[name], "left")
        text = f" {means[name]:.2f} " + ("(off the axis)" if means[name] > end else "")
        color = "white" if means[name] > end else "black"
        axes.text(where, y, text, va="center", ha=align, fontsize="small", color=color)
    if recipe:
        axes.axvline(np.mean(recipe), color="tab:blue", linestyle="--", linewidth=1)
    axes.set_xlim(0, end)
    axes.set_yticks(range(len(names)), [textwrap.fill(name, 34) for name in names])
    axes.invert_yaxis()
    axes.set_xlabel(f"Inception FID-10k after {last:,} G updates (dots: seeds; lower is better)")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/raw"))
    parser.add_argument("--known-features", type=Path, default=Path("data/fid_features.npy"))
    parser.add_argument("--runs", type=Path, default=Path(".cache/levers"), help="kept runs")
    parser.add_argument("--cache", type=Path, default=Path(".cache/inception"), help="features")
    parser.add_argument("--preset", default="fashion_30min_fp32")
    parser.add_argument("--only", nargs="*", choices=list(LEVERS), help="default: all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    parser.add_argument("--max-steps", type=int, default=30000, help="every run's length")
    parser.add_argument("--seconds", type=float, default=3600, help="a safety clock a run")
    parser.add_argument("--every", type=int, default=30000, help="steps between scored Gs")
    parser.add_argument("--n-fake", type=int, default=10000)
    parser.add_argument("--n-real", type=int, default=10000, help="reference images")
    parser.add_argument("--fake-seed", type=int, default=43, help="the fakes' noise")
    parser.add_argument("--fid-batch", type=int, default=50)
    parser.add_argument("--precision", default="fp32", help="the runs' training precision")
    parser.add_argument("--device", default=str(pick_device()))
    parser.add_argument("--parallel", type=int, help="runs at a time (GPU: all; CPU: 1)")
    parser.add_argument("--record", action="store_true", help="append to reports/results")
    parser.add_argument("--again", action="store_true", help="rerun what is recorded")
    parser.add_argument("--draw", type=Path, help="plot the recorded rows here, and stop")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    path = results.REPO / results.RESULTS / f"{TABLE}.json"
    table = results.load_table(TABLE) if path.is_file() else {"columns": COLUMNS, "rows": []}
    if args.draw:
        return draw(recorded(table, protocol(args)), args.draw)
    jobs = jobs_for(args)
    dataset = jobs[0][2]["dataset"]
    datasets.verify(dataset, args.data)
    done = recorded(table, protocol(args)) if args.record else []
    if not args.again:
        jobs = remaining(jobs, done)
    if args.parallel is None:
        args.parallel = len(jobs) if args.device.startswith("cuda") else 1
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_model()
    print(f"{where}, torch {torch.__version__}; {args.preset}, {len(jobs)} runs to go", flush=True)
    extract = Extractor(FidSection(precision="fp32", batch_size=args.fid_batch), args.cache)
    real = reference(args, extract, dataset)  # before any training
    args.runs.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/levers.py " + " ".join(sys.argv[1:])
    commit = results.git_commit()  # the code that runs, whatever is committed while it does
    machine = results.machine_record(command) | {"commit": commit}  # for the printed table
    rows = list(done)
    for start in range(0, len(jobs), args.parallel):
        batch = jobs[start : start + args.parallel]
        files = [run_file(params) for _, _, params in batch]
        todo = [i for i, file in enumerate(files) if not (args.runs / file).is_file()]
        run_all(
            [(f"{batch[i][0]} {batch[i][1]}", batch[i][2]) for i in todo],
            args,
            args.runs,
            [files[i] for i in todo],
        )
        for job, file in zip(batch, files, strict=True):
            saved = torch.load(args.runs / file, weights_only=True)
            new = score(job, saved, real, extract, args)
            print(
                ", ".join(
                    f"{r['setting']} seed {r['seed']} at {r['step']:,}: FID {r['fid']:.2f}"
                    for r in new
                ),
                flush=True,
            )
            if args.record:
                results.record_rows(TABLE, COLUMNS, new, command, commit=commit)
            rows += [{**row, "machine": machine} for row in new]
    print_table(summary(rows))


if __name__ == "__main__":
    main()
