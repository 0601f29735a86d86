"""The real pipeline on a GPU, measured: every stage of `dvc repro` forced and timed, with the
card's utilization and memory sampled by nvidia-smi, into one JSON file.

    python benchmarks/gpu_run.py --out DIR                       # params.yaml as it is
    python benchmarks/gpu_run.py --out DIR --preset fashion_gpu  # a preset's changes first
    python benchmarks/gpu_run.py --out DIR --set train.max_steps=20 --set fid.n_fake=64

--preset and --set rewrite this checkout's params.yaml (run it in a disposable copy, as
scripts/gpu_run.sh on the device machine is). DIR/gpu_run.json holds the machine record (GPU,
driver, torch, commit, date), per-stage seconds with the GPU's mean and peak utilization and
peak memory, which device each stage used, FID and the other scores, images a second and the
model FLOP utilization of training against the card's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

import ddp_one_process  # a script beside this one
from ganlab import checkpoint, presets, results
from ganlab.config import with_overrides
from ganlab.io import write_text
from ganlab.metrics import fid
from ganlab.models import ModelSpec, build_models
from ganlab.models.conditional import discriminate, forward_generator

REPO = Path(__file__).resolve().parents[1]
STAGES = ("check_params", "download", "fid_stats", "classifier", "train", "evaluate", "render")
SMI_FIELDS = ("utilization.gpu", "memory.used")
# dense bf16 tensor-core peaks (NVIDIA's datasheets, without sparsity), by name fragment
BF16_PEAK = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12}


def apply_changes(params_path: Path, changes: dict[str, Any]) -> None:
    """Set dotted keys (`train.max_steps`) in params.yaml."""
    params = with_overrides(yaml.safe_load(params_path.read_text(encoding="utf-8")), changes)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def parse_set(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    if not key or not _:
        raise argparse.ArgumentTypeError(f"--set {text!r}: expected KEY=VALUE")
    return key, yaml.safe_load(value)


class GpuSampler:
    """nvidia-smi's utilization and memory every half second, in a thread (none without it)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # (time, utilization %, MiB used)
        self.process: subprocess.Popen | None = None
        if shutil.which("nvidia-smi") is None:
            return
        query = f"--query-gpu={','.join(SMI_FIELDS)}"
        command = ["nvidia-smi", query, "--format=csv,noheader,nounits", "-lms", "500"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            values = [v.strip() for v in line.split(",")]
            if len(values) == 2 and all(v.replace(".", "").isdigit() for v in values):
                self.samples.append((time.time(), float(values[0]), float(values[1])))

    def between(self, start: float, end: float) -> dict[str, float]:
        window = [s for s in self.samples if start <= s[0] <= end]
        if not window:
            return {}
        utilization = [s[1] for s in window]
        return {
            "gpu_utilization_mean": round(sum(utilization) / len(utilization), 1),
            "gpu_utilization_max": max(utilization),
            "gpu_memory_max_mib": max(s[2] for s in window),
            "samples": len(window),
        }

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()


def run_stages(repo: Path, sampler: GpuSampler) -> dict[str, dict[str, Any]]:
    """Every stage forced, one at a time in pipeline order: seconds and the GPU while it ran."""
    stages = {}
    for stage in STAGES:
        started = time.time()
        command = [sys.executable, "-m", "dvc", "repro", "--force", "--single-item", stage]
        subprocess.run(command, cwd=repo, check=True)
        ended = time.time()
        stages[stage] = {"seconds": round(ended - started, 1)} | sampler.between(started, ended)
    return stages


def step_flops(generator_file: Path, batch_size: int) -> int:
    """FLOPs of one training step (D on real and fake, forward and backward; G forward and
    backward through D), counted by PyTorch on the trained models' shapes."""
    saved = checkpoint.load(generator_file)
    spec = ModelSpec.from_saved(saved["spec"])
    netG, netD = build_models(saved["model"], spec, "dcgan")
    labels = torch.zeros(batch_size, dtype=torch.long) if spec.n_classes else None
    z = torch.randn(batch_size, spec.z_dim)
    real = torch.rand(batch_size, *spec.image_shape) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        fake = forward_generator(netG, z, labels)
        d_real = discriminate(netD, real, labels)[0]
        d_fake = discriminate(netD, fake.detach(), labels)[0]
        (d_real.mean() - d_fake.mean()).backward()
        discriminate(netD, fake, labels)[0].mean().backward()
    return counter.get_total_flops()


def cpu_agreement(repo: Path) -> dict[str, Any]:
    """The fid_stats stage again with the GPU hidden: the same training images' Inception
    features and statistics on the CPU against the GPU's (the stage's outputs stay the CPU's)."""
    gpu_features = fid.load_features(repo / "data/fid_features.npy")
    gpu_stats = fid.load_stats(repo / "data/fid_stats.npz")
    started = time.time()
    command = [sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "fid_stats"]
    subprocess.run(command, cwd=repo, env=os.environ | {"CUDA_VISIBLE_DEVICES": ""}, check=True)
    seconds = time.time() - started
    cpu_features = fid.load_features(repo / "data/fid_features.npy")
    info = read_json(repo / "reports/fid_stats_info.json")
    return {
        "device": info.get("device"),
        "inception_runtime": info.get("inception_runtime"),
        "seconds": round(seconds, 1),
        "max_feature_difference": float(np.abs(gpu_features - cpu_features).max()),
        "max_feature": float(np.abs(cpu_features).max()),
        "fid_between_the_statistics": fid.frechet_distance(
            *gpu_stats, *fid.load_stats(repo / "data/fid_stats.npz")
        ),
    }


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def mlflow_runs(repo: Path) -> int:
    """Runs in the pipeline's MLflow store (train and evaluate each write one)."""
    database = repo / "mlflow.db"
    if not database.is_file():
        return 0
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def driver_version() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
    return subprocess.run(query, capture_output=True, text=True).stdout.strip() or None


def summary(
    repo: Path, stages: dict, changes: dict, command: str, commit: str | None = None
) -> dict[str, Any]:
    """The run's record: machine, stages, devices, scores, speed and MFU (`commit`: the code's,
    when this copy's history is not the project's)."""
    train_info = read_json(repo / "reports/train_info.json")
    trained = read_json(repo / "metrics/train.json")
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    record: dict[str, Any] = {
        "machine": results.machine_record(command)
        | {"driver": driver_version()}
        | ({"commit": commit} if commit else {}),
        "changes": changes,
        "stages": stages,
        "devices": {
            "fid_stats": read_json(repo / "reports/fid_stats_info.json").get("device"),
            "classifier": read_json(repo / "reports/classifier_info.json").get("device"),
            "evaluate": read_json(repo / "reports/eval_info.json").get("device"),
            "train": train_info.get("device"),
            "render": read_json(repo / "reports/render_info.json").get("device"),
        },
        "train_precision": train_info.get("precision"),
        "metrics": read_json(repo / "metrics/eval.json"),
        "train": trained,
        "images_per_second": train_info.get("images_per_second"),
        "mlflow_runs": mlflow_runs(repo),
    }
    steps, seconds = trained.get("steps"), train_info.get("train_seconds")
    gpu = record["machine"]["gpu"] or ""
    peak = next((value for name, value in BF16_PEAK.items() if name in gpu), None)
    if steps and seconds and (repo / "models/generator.pt").is_file():
        flops = step_flops(repo / "models/generator.pt", params["batch_size"])
        record["train_flops_per_step"] = flops
        record["train_flops_per_second"] = flops * steps / seconds
        if peak:
            record["mfu_vs_dense_bf16_peak"] = round(flops * steps / seconds / peak, 4)
    return record


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--out", type=Path, required=True, help="folder for gpu_run.json")
    arguments.add_argument("--repo", type=Path, default=REPO, help="the checkout to run")
    arguments.add_argument("--preset", choices=sorted(presets.PRESETS), help="apply it first")
    arguments.add_argument("--set", type=parse_set, action="append", default=[], help="KEY=VALUE")
    arguments.add_argument("--commit", help="the code's commit, when this copy has no history")
    arguments.add_argument(
        "--cpu-check", action="store_true", help="fid_stats again on the CPU, against the GPU's"
    )
    arguments.add_argument(
        "--ddp-steps", type=int, default=300, help="steps of the one-process DDP check (0: none)"
    )
    args = arguments.parse_args()
    changes = presets.flat_overrides(args.preset) if args.preset else {}
    changes |= dict(args.set)
    apply_changes(args.repo / "params.yaml", changes)
    sampler = GpuSampler()
    try:
        stages = run_stages(args.repo, sampler)
    finally:
        sampler.stop()
    record = summary(args.repo, stages, changes, " ".join(sys.argv), args.commit)
    args.out.mkdir(parents=True, exist_ok=True)
    write_record(args.out, record)  # kept even if the DDP check below fails
    print(json.dumps({k: record[k] for k in ("stages", "devices", "metrics")}, indent=2))
    if args.cpu_check:  # kept apart: a failure here leaves the record and the DDP check
        try:
            record["fid_stats_on_the_cpu"] = cpu_agreement(args.repo)
        except subprocess.CalledProcessError as error:
            record["fid_stats_on_the_cpu_error"] = str(error)
        write_record(args.out, record)
        print(json.dumps({k: v for k, v in record.items() if k.startswith("fid_stats")}, indent=2))
    if args.ddp_steps:  # the run's params (params.yaml as changed), plain and through DDP
        label, data = args.preset or "params.yaml", args.repo / "data/raw"
        try:
            rows = ddp_one_process.measure("none", args.ddp_steps, data, label)
        except (subprocess.CalledProcessError, SystemExit) as error:
            record["ddp_one_process_error"] = str(error)
        else:
            record["ddp_one_process"] = rows
        write_record(args.out, record)
        print(json.dumps({k: v for k, v in record.items() if k.startswith("ddp")}, indent=2))


def write_record(out: Path, record: dict[str, Any]) -> None:
    write_text(out / "gpu_run.json", json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
