"""DDP's path on one device: the same training steps as one plain process and as one process
under `torchrun --nproc_per_node 1`, which joins a process group (NCCL on a GPU, gloo on the
CPU) and trains G and D through DistributedDataParallel and its collectives. A machine with one
GPU checks the multi-GPU code this way: the losses should match the plain run's (exactly on
the CPU; on a GPU up to cuDNN's nondeterminism) at a cost the table shows.

    python benchmarks/ddp_one_process.py                              # fashion_gpu, 300 steps
    python benchmarks/ddp_one_process.py --preset none --steps 20     # a rehearsal on the CPU
    python benchmarks/ddp_one_process.py --record                     # + reports/results/

Each run is a fresh process (the same for both), training on data/raw's Fashion-MNIST.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from experiments import preset_params
from ganlab import results
from ganlab.data import datasets
from ganlab.device import pick_device, resolve_precision
from ganlab.training import distributed
from ganlab.training.gan import train
from ganlab.training.params import from_mapping

TABLE = "ddp_one_process"
PARAMS_NAME = {"none": "params.yaml"}  # how the rows name the params they trained
COLUMNS = {
    "run": "run",
    "backend": "backend",
    "wrapped_in": "G and D trained through",
    "steps": "steps",
    "steps_s": "steps/s",
    "losses": "losses against the plain run",
}


def worker(args: argparse.Namespace) -> None:
    """Train the preset for --steps in this process (under torchrun: in its process group)."""
    if distributed.under_torchrun():
        world, device = distributed.init_from_env()
    else:
        world, device = distributed.World(), pick_device()
    torch.backends.cudnn.benchmark = device.type == "cuda"  # as the train stage sets it
    # by steps alone; train() without a reference scores nothing whatever train.eval_every says
    overrides = {"train.max_steps": args.steps, "train.max_minutes": None}
    config = from_mapping(preset_params(args.preset, overrides))
    images, labels = datasets.load_images(config.dataset, args.data, train=True)
    wrappers: list[str] = []
    wrap = distributed.wrap
    distributed.wrap = lambda *a: wrappers.append(type(wrapped := wrap(*a)).__name__) or wrapped
    try:
        result = train(
            config,
            images,
            labels,
            device=device,
            precision=resolve_precision(config.precision, device),
            checkpoint_path=args.out.with_suffix(".pt"),
            run_id=args.out.stem,
        )
        backend = torch.distributed.get_backend() if world.distributed else None
    finally:
        distributed.shutdown()
    record = {
        "backend": backend,
        "wrappers": sorted(set(wrappers)),
        "device": device.type,
        "steps": result.steps,
        "seconds": result.train_seconds,
        "history": result.history,
    }
    args.out.write_text(json.dumps(record), encoding="utf-8")


def launch(preset: str, steps: int, data: Path, out: Path, torchrun: bool) -> dict:
    """One fresh process training the preset, plain or under torchrun with one process."""
    script = [__file__, "--worker", "--out", str(out), "--preset", preset]
    script += ["--steps", str(steps), "--data", str(data)]
    runner = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    subprocess.run([sys.executable, *(runner if torchrun else []), *script], check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def compare(plain: dict, ddp: dict) -> str:
    """How the DDP run's losses stand against the plain run's, step for step."""
    a, b = torch.tensor(plain["history"]), torch.tensor(ddp["history"])
    if a.shape != b.shape:
        return f"different lengths: {tuple(a.shape)} and {tuple(b.shape)}"
    if torch.equal(a.nan_to_num(), b.nan_to_num()):
        return "identical"
    return f"max |difference| {(a - b).abs().nan_to_num().max().item():.3g}"


def measure(preset: str, steps: int, data: Path, label: str | None = None) -> list[dict]:
    """The table's two rows (`label` names the params in them; by default the preset)."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = launch(preset, steps, data, Path(tmp) / "plain.json", torchrun=False)
        ddp = launch(preset, steps, data, Path(tmp) / "ddp.json", torchrun=True)
    if ddp["backend"] is None or "DistributedDataParallel" not in ddp["wrappers"]:
        raise SystemExit("the torchrun process did not train through DDP")
    rows = []
    for name, run in (("one process", plain), ("torchrun --nproc_per_node 1", ddp)):
        rows.append(
            {
                "run": f"{label or PARAMS_NAME.get(preset, preset)}, {name} on {run['device']}",
                "backend": run["backend"],
                "wrapped_in": ", ".join(run["wrappers"]),
                "steps": run["steps"],
                "steps_s": round(run["steps"] / run["seconds"], 1),
                "losses": "the reference" if run is plain else compare(plain, ddp),
            }
        )
    return rows


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--preset", default="fashion_gpu", help="a preset, or none")
    arguments.add_argument("--steps", type=int, default=300)
    arguments.add_argument("--data", type=Path, default=Path("data/raw"))
    arguments.add_argument("--record", action="store_true", help="append to reports/results/")
    arguments.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    arguments.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = arguments.parse_args()
    if args.worker:
        worker(args)
        return
    rows = measure(args.preset, args.steps, args.data)
    print(results.machine_name(results.machine_record("")))
    for row in rows:
        print(" | ".join(str(row[key]) for key in COLUMNS))
    if args.record:
        command = "python " + " ".join(sys.argv)
        print(results.record_rows(TABLE, COLUMNS, rows, command))


if __name__ == "__main__":
    main()
