"""FID speed and agreement: ganlab's Inception feature extraction against the pytorch-fid CLI.

Both score the same images (Fashion-MNIST test images as PNG folders for the CLI, the
same pixels as uint8 tensors for ganlab) with the same weights. Prints images/s for
each mode, the ratio to the CLI, and each mode's FID and its difference from the CLI's.

    python benchmarks/fid_speed.py --n 500
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from ganlab.config import FidSection
from ganlab.data import datasets
from ganlab.device import cpu_model
from ganlab.metrics import fid
from ganlab.metrics.features import inception_features, inception_network
from ganlab.metrics.inception import ensure_weights

CPU = torch.device("cpu")

MODES = {  # fid.runtime: auto is the ONNX Runtime row on CPUs (fp32), PyTorch on GPUs
    "exact: fp32, PyTorch": FidSection(channels_last=False, runtime="torch"),
    "exact: fp32 + channels_last, PyTorch": FidSection(runtime="torch"),
    "exact: fp32, ONNX Runtime (auto on CPUs)": FidSection(runtime="onnxruntime"),
    "fast: bf16 + channels_last + folded BN": FidSection(precision="bf16", runtime="torch"),
}


def write_pngs(images: torch.Tensor, folder: Path) -> None:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy(), mode="L").save(folder / f"{i:05d}.png")


def cli_fid(a: Path, b: Path, batch_size: int, device: str = "cpu") -> tuple[float, float]:
    """`python -m pytorch_fid a b` as a user runs it: (FID, wall seconds). Its stderr's end is
    in the error if it fails."""
    command = [sys.executable, "-m", "pytorch_fid", str(a), str(b), "--device", device]
    command += ["--batch-size", str(batch_size)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return float(re.search(r"FID:\s+([0-9.eE+-]+)", result.stdout).group(1)), seconds


def ganlab_fid(
    sets: list[torch.Tensor], settings: FidSection, device: torch.device = CPU
) -> tuple[float, float]:
    """FID as the stages compute it, loading the network included (an ONNX export is cached
    beside the weights after its first run)."""
    started = time.perf_counter()
    network = inception_network(settings, device)
    stats = [fid.statistics(inception_features(s, network, settings, device)[0]) for s in sets]
    value = fid.frechet_distance(*stats[0], *stats[1])
    return value, time.perf_counter() - started


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--n", type=int, default=500, help="images per set")
    arguments.add_argument("--batch-size", type=int, default=50)
    args = arguments.parse_args()
    ensure_weights()  # the CLI loads the same file; build it offline first if it is missing

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        datasets.download("fashion_mnist", root, local_dirs=["/usr/share/datasets/fashion-mnist"])
        test_images, _ = datasets.load_images("fashion_mnist", root, train=False)
        train_images, _ = datasets.load_images("fashion_mnist", root, train=True)
        sets = [test_images[: args.n], train_images[: args.n]]
        write_pngs(sets[0], Path(tmp) / "a")
        write_pngs(sets[1], Path(tmp) / "b")
        total = 2 * args.n
        print(
            f"{total} images (2 sets of {args.n} Fashion-MNIST images), batch {args.batch_size}, "
            f"{torch.get_num_threads()} threads, {cpu_model()}"
        )
        cli_value, cli_seconds = cli_fid(Path(tmp) / "a", Path(tmp) / "b", args.batch_size)
        rows = [("pytorch-fid CLI (PNG folders)", total / cli_seconds, 1.0, cli_value, 0.0)]
        for name, settings in MODES.items():
            settings = dataclasses.replace(settings, batch_size=args.batch_size)
            value, seconds = ganlab_fid(sets, settings)
            rate = total / seconds
            rows.append((name, rate, rate / rows[0][1], value, abs(value - cli_value)))

    print(
        f"\n{'mode':42} {'images/s':>9} {'vs CLI':>7} {'FID':>10} {'|dFID|':>9} {'|dFID|/FID':>10}"
    )
    for name, rate, ratio, value, delta in rows:
        print(
            f"{name:42} {rate:9.1f} {ratio:6.2f}x {value:10.4f} {delta:9.4f} "
            f"{delta / cli_value:10.2%}"
        )
    print("\nwall times include loading the network, as a user of either tool sees them")


if __name__ == "__main__":
    main()
