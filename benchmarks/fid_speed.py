"""FID speed and agreement: ganlab's Inception feature extraction against the pytorch-fid CLI.

Both score the same images (Fashion-MNIST test images as PNG folders for the CLI, the
same pixels as uint8 tensors for ganlab) with the same weights. Prints images/s for
each mode, the ratio to the CLI, and each mode's FID and its difference from the CLI's.

    python benchmarks/fid_speed.py --n 500
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganlab.data import datasets
from ganlab.device import Precision, cpu_model
from ganlab.metrics import fid
from ganlab.metrics.inception import ensure_weights, load_fid_inception

FP32, BF16 = Precision("fp32", None), Precision("bf16", torch.bfloat16)
MODES = {  # name: (precision, channels_last, fold BatchNorm); fid.precision: fp32 is the second
    "exact: fp32": (FP32, False, False),
    "exact: fp32 + channels_last": (FP32, True, False),
    "fp32 + channels_last + folded BN": (FP32, True, True),
    "fast: bf16 + channels_last + folded BN": (BF16, True, True),
}


def write_pngs(images: torch.Tensor, folder: Path) -> None:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy(), mode="L").save(folder / f"{i:05d}.png")


def cli_fid(a: Path, b: Path, batch_size: int) -> tuple[float, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytorch_fid",
            str(a),
            str(b),
            "--device",
            "cpu",
            "--batch-size",
            str(batch_size),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    return float(re.search(r"FID:\s+([0-9.eE+-]+)", result.stdout).group(1)), seconds


def ganlab_fid(
    sets: list[torch.Tensor], precision: Precision, channels_last: bool, fold: bool, batch_size: int
):
    started = time.perf_counter()
    device = torch.device("cpu")
    model = fid.prepare(load_fid_inception(), device, channels_last, fold_batchnorm=fold)
    stats = []
    for images in sets:
        features, _ = fid.inception_outputs(
            images,
            model,
            batch_size=batch_size,
            precision=precision,
            device=device,
            channels_last=channels_last,
        )
        stats.append(fid.statistics(features))
    value = fid.frechet_distance(*stats[0], *stats[1])
    return value, time.perf_counter() - started


def onnxruntime_fid(sets: list[torch.Tensor], batch_size: int, folder: Path):
    """Another CPU runtime on the same fp32 network: ONNX Runtime (not a ganlab dependency;
    this row runs where `pip install onnxruntime onnx` has been done), export included."""
    import onnxruntime

    started = time.perf_counter()
    model = fid.prepare(load_fid_inception(), torch.device("cpu"), channels_last=False)

    class Pool3(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return model.features(images)[0].flatten(1)

    example = torch.zeros(batch_size, 3, 28, 28)
    path = folder / "inception.onnx"
    dynamic = {"images": {0: "n"}}
    torch.onnx.export(
        Pool3(), (example,), path, input_names=["images"], dynamic_axes=dynamic, dynamo=False
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    stats = []
    for images in sets:
        features = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].float().div(255).repeat(1, 3, 1, 1)
            features.append(session.run(None, {"images": batch.numpy()})[0])
        stats.append(fid.statistics(np.concatenate(features).astype(np.float64)))
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
        for name, (precision, channels_last, fold) in MODES.items():
            value, seconds = ganlab_fid(sets, precision, channels_last, fold, args.batch_size)
            rate = total / seconds
            rows.append((name, rate, rate / rows[0][1], value, abs(value - cli_value)))
        try:
            value, seconds = onnxruntime_fid(sets, args.batch_size, Path(tmp))
        except ImportError as error:
            print(f"(no ONNX Runtime row: {error}; pip install onnxruntime onnx to add it)")
        else:
            rate = total / seconds
            row = ("other runtime: ONNX Runtime fp32", rate, rate / rows[0][1], value)
            rows.append((*row, abs(value - cli_value)))

    print(
        f"\n{'mode':38} {'images/s':>9} {'vs CLI':>7} {'FID':>10} {'|dFID|':>9} {'|dFID|/FID':>10}"
    )
    for name, rate, ratio, value, delta in rows:
        print(
            f"{name:38} {rate:9.1f} {ratio:6.2f}x {value:10.4f} {delta:9.4f} "
            f"{delta / cli_value:10.2%}"
        )
    print("\nwall times include loading the network, as a user of either tool sees them")


if __name__ == "__main__":
    main()
