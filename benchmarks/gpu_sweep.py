"""Recipe settings side by side, step for step, on one GPU (runs on a CPU too, one at a time).

A width-32 DCGAN step at batch 128 is launch-bound on a GPU (about 100 steps/s on an H200
whatever the precision: benchmarks/gpu_paths.py), so a dozen settings of a recipe preset
train at once there, each in its own process. Every --every steps each run's sampled
generator (G's EMA when on) is kept; afterwards each is scored with the classifier FID of
--n-fake fakes against the test images (the classifier stage's model, as the train stage
scores G while it trains). The table compares settings at equal steps: what a CPU's
30 minutes (its steps per second, from a run of the preset there) are best spent on. Confirm
a lead with Inception FID: the README's hinge run was 11% ahead in the classifier's features
and level in Inception's.

    python benchmarks/gpu_sweep.py --data data/raw --classifier data/classifier.pt \\
        --seconds 425 --every 3000      # the README's sweep: ~8 minutes on one H200
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp

from experiments import preset_params
from ganlab.data import datasets
from ganlab.device import cpu_model, pick_device, resolve_precision
from ganlab.io import atomic_path
from ganlab.metrics import classifier, registry
from ganlab.metrics.features import Features, classifier_features
from ganlab.sampling import build_generator, generate
from ganlab.snapshots import Snapshot
from ganlab.training.gan import model_spec, train
from ganlab.training.params import from_mapping
from ganlab.training.runner import Hooks

# Each a change to the preset, as `dvc exp run -S` keys.
SETTINGS: dict[str, dict[str, Any]] = {
    "preset": {},
    "ema_decay 0.9995": {"ema.decay": 0.9995},
    "ema_decay 0.9999": {"ema.decay": 0.9999},
    "Adam betas (0, 0.99)": {"optim.beta1": 0.0, "optim.beta2": 0.99},
    "d_lr 2e-3 (TTUR)": {"optim.d_lr": 0.002},
    "hinge": {"loss": "hinge"},
    "hinge + SN D, no BatchNorm": {"loss": "hinge", "d.spectral_norm": True, "d.norm": "none"},
    "hinge + SN D, d_lr 2e-3": {
        "loss": "hinge",
        "d.spectral_norm": True,
        "d.norm": "none",
        "optim.d_lr": 0.002,
    },
    "ndf 64 (wider D)": {"ndf": 64},
    "DiffAugment translation": {"regularize.diffaugment": ["translation"]},
    "d.minibatch_std": {"d.minibatch_std": True},
    "betas (0, 0.99), lr 2e-3, ema 0.9995": {
        "optim.beta1": 0.0,
        "optim.beta2": 0.99,
        "lr": 0.002,
        "ema.decay": 0.9995,
    },
}


def sweep_params(preset: str, change: dict[str, Any], args: argparse.Namespace) -> dict:
    """The preset with one setting's change, run by steps and the clock, no in-training scoring."""
    return preset_params(
        preset,
        change
        | {
            "train.eval_every": None,
            "train.snapshot_minutes": None,
            "train.snapshot_every": args.every,
            "train.max_steps": args.max_steps,
            "train.max_minutes": args.seconds / 60,
            "train.checkpoint_every": 10**9,  # resume checkpoints at epoch ends only
            "train.log_every": 500,
        },
    )


def train_one(
    name: str, params: dict, data: Path, device: str, precision: str, folder: Path
) -> None:
    """One setting's run (in its own process): its kept generators, by step, into folder/name.

    Each kept generator is written as it is kept, and the run resumes from its last epoch's
    checkpoint: a run stopped part way goes on where it stopped when started again."""
    target = torch.device(device)
    if target.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the train stage sets it on GPUs
    images, _ = datasets.load_images(params["dataset"], data, train=True)

    def keep(snapshot: Snapshot) -> None:
        state = {k: v.detach().cpu().clone() for k, v in snapshot.state["G"].items()}
        with atomic_path(folder / f"{name}.G{snapshot.step}.pt") as tmp:
            torch.save(state, tmp)

    result = train(
        from_mapping(params),
        images,
        device=target,
        precision=resolve_precision(precision, target),
        checkpoint_path=folder / f"{name}.checkpoint.pt",
        run_id=f"gpu-sweep-{name}",
        hooks=Hooks(on_snapshot=keep),
    )
    kept = {
        int(path.name.removeprefix(f"{name}.G").removesuffix(".pt")): torch.load(
            path, weights_only=True
        )
        for path in folder.glob(f"{glob.escape(name)}.G*.pt")
    }
    kept[result.steps] = {k: v.detach().cpu() for k, v in result.netG.state_dict().items()}
    run = {"steps": result.steps, "seconds": result.train_seconds, "generators": kept}
    with atomic_path(folder / name) as tmp:  # train_seconds: a resumed run's parts together
        torch.save(run, tmp)


def run_all(
    jobs: list[tuple[str, dict]],
    args: argparse.Namespace,
    folder: Path,
    files: list[str] | None = None,
) -> None:
    """The settings' runs, --parallel processes at a time, each into folder/<its file name>
    (`files`; by default its index in `jobs`)."""
    files = files or [str(index) for index in range(len(jobs))]
    context = mp.get_context("spawn")  # CUDA cannot be used in forked processes
    for start in range(0, len(jobs), args.parallel):
        processes = [
            context.Process(
                target=train_one,
                args=(file, params, args.data, args.device, args.precision, folder),
            )
            for file, (_, params) in zip(
                files[start : start + args.parallel],
                jobs[start : start + args.parallel],
                strict=True,
            )
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
            if process.exitcode != 0:
                raise SystemExit(f"a sweep process failed (exit code {process.exitcode})")


def fakes_by_step(
    name: str,
    params: dict,
    saved: dict,
    shape: tuple[tuple[int, ...], int],
    n_fake: int,
    seed: int,
    device: torch.device,
) -> Iterator[tuple[int, torch.Tensor]]:
    """(step, n_fake fakes of noise `seed`) for each generator a run kept (train_one's file);
    `shape`: the images' shape and the data's classes, as the run's models were built."""
    config = from_mapping(params)
    spec = model_spec(config, *shape)
    generator_info = {"model": config.model, "spec": dataclasses.asdict(spec)}
    fp32 = resolve_precision("fp32", device)
    for step, state in sorted(saved["generators"].items()):
        netG, _ = build_generator(generator_info, state, device, f"{name} at step {step}")
        yield (
            step,
            generate(
                netG,
                n_fake,
                z_dim=config.z_dim,
                latent=config.latent,
                seed=seed,
                device=device,
                precision=fp32,
            ),
        )


def score(
    jobs: list[tuple[str, dict]], args: argparse.Namespace, folder: Path
) -> dict[str, dict[str, Any]]:
    """Classifier FID of every kept generator, by setting and step: the registry's metric, as
    the train stage scores G while it trains."""
    device = torch.device(args.device)
    model = classifier.load(args.classifier, device)
    real, _ = datasets.load_images(jobs[0][1]["dataset"], args.data, train=False)
    real_features = classifier_features(model, real, device)[0]
    results = {}
    for index, (name, params) in enumerate(jobs):
        saved = torch.load(folder / str(index), weights_only=True)
        shape = (tuple(real.shape[1:]), model.n_classes)
        curve = {}
        for step, fakes in fakes_by_step(
            name, params, saved, shape, args.n_fake, args.seed, device
        ):
            features = Features(
                real_classifier=real_features,
                fake_classifier=classifier_features(model, fakes, device)[0],
            )
            value = registry.score(features, ("classifier_fid",))["classifier_fid"]
            curve[step] = round(value, 2)
        results[name] = {
            "steps": saved["steps"],
            "steps_per_second": round(saved["steps"] / saved["seconds"], 1),
            "classifier_fid": curve,
        }
    return results


def print_table(results: dict[str, dict[str, Any]], every: int) -> None:
    """One row per setting: classifier FID at each multiple of --every, then at its last step."""
    longest = max(max(r["classifier_fid"]) for r in results.values())
    steps = list(range(every, longest + 1, every))
    header = ["setting", "steps/s", *(f"{s:,}" for s in steps), "last step", "at last"]
    print(f"| {' | '.join(header)} |")
    print(f"| --- | {' | '.join('---:' for _ in header[1:])} |")
    for name, row in results.items():
        curve = row["classifier_fid"]
        last = max(curve)
        cells = [f"{curve[s]:.1f}" if s in curve else "" for s in steps]
        print(
            f"| {' | '.join([name, str(row['steps_per_second']), *cells])} | "
            f"{last:,} | {curve[last]:.1f} |"
        )


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--data", type=Path, default=Path("data/raw"))
    arguments.add_argument("--classifier", type=Path, default=Path("data/classifier.pt"))
    arguments.add_argument("--preset", default="fashion_30min_b128")
    arguments.add_argument("--only", nargs="*", choices=list(SETTINGS), help="default: all")
    arguments.add_argument("--seconds", type=float, default=425, help="each run's clock")
    arguments.add_argument("--max-steps", type=int, default=36000)
    arguments.add_argument("--every", type=int, default=3000, help="steps between kept Gs")
    arguments.add_argument("--n-fake", type=int, default=10000)
    arguments.add_argument("--seed", type=int, default=43, help="the fakes' noise")
    arguments.add_argument("--precision", default="fp32", help="the runs' training precision")
    arguments.add_argument("--device", default=str(pick_device()))
    arguments.add_argument(
        "--parallel", type=int, help="runs at a time (default: all on a GPU, 1 on a CPU)"
    )
    arguments.add_argument("--json", type=Path, help="also write the results here")
    args = arguments.parse_args()
    if not args.classifier.is_file():
        raise SystemExit(f"{args.classifier}: no domain classifier; run `dvc repro classifier`")
    names = args.only or list(SETTINGS)
    jobs = [(name, sweep_params(args.preset, SETTINGS[name], args)) for name in names]
    for _, params in jobs:
        from_mapping(params)  # every setting's params checked before any training
    datasets.verify(jobs[0][1]["dataset"], args.data)
    if args.parallel is None:
        args.parallel = len(jobs) if args.device.startswith("cuda") else 1
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_model()
    print(f"{where}, torch {torch.__version__}; {args.preset}, {len(jobs)} settings\n")
    with tempfile.TemporaryDirectory() as tmp:
        run_all(jobs, args, Path(tmp))
        results = score(jobs, args, Path(tmp))
    print_table(results, args.every)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
