"""The CUDA paths in one run, for a machine with an NVIDIA GPU (CI has none).

1. Training speed of a recipe preset (default fashion_30min_b128) under each training
   precision: fp32 as PyTorch runs it (TF32 convolutions), bf16 autocast (what
   `precision: auto` picks on such GPUs) and fp16 autocast with gradient scaling; images/s,
   and whether every logged loss stayed finite.
2. A short bf16 training run of the same preset (--minutes): its fakes are what 3 scores.
3. FID on the GPU: the pytorch-fid CLI (`--device cuda`, PNG folders) and ganlab's
   modes as the stages run them there, exact (`fid.precision: fp32`, IEEE fp32) and fast
   (`bf16`: TF32 on GPUs), and bf16 autocast (the CPU fast mode) for comparison, each against
   fp32 on the CPU (pytorch-fid's own path): images/s and |dFID|/FID.

Trains and scores on the Fashion-MNIST test split (the GPU machine may hold only that
split): these are checks of the GPU paths and their speeds, not quality figures.

    python benchmarks/gpu_paths.py --data data/raw    # ~5 minutes on one H200 (2 of them
                                                      # the fp32 reference on its CPU)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
import time
from pathlib import Path

import torch

from experiments import preset_params
from fid_speed import cli_fid, ganlab_fid, write_pngs
from ganlab.config import FidSection
from ganlab.data import datasets
from ganlab.device import cpu_model, resolve_precision
from ganlab.metrics import fid
from ganlab.metrics.features import inception_network
from ganlab.metrics.inception import ensure_weights
from ganlab.sampling import generate
from ganlab.training.gan import train
from ganlab.training.params import from_mapping

CPU = torch.device("cpu")
CUDA = torch.device("cuda")


def train_preset(images: torch.Tensor, params: dict, precision: str, tmp: Path):
    config = from_mapping(params)
    return train(
        config,
        images,
        device=CUDA,
        precision=resolve_precision(precision, CUDA),
        checkpoint_path=tmp / f"{precision}-{time.monotonic_ns()}.pt",
        run_id="gpu-paths",
    )


def bf16_fid(sets: list[torch.Tensor], settings: FidSection) -> tuple[float, float]:
    """FID with the CPU fast mode's network and bf16 autocast run on the GPU, which the stages
    no longer do there (fid.precision bf16 is TF32 on GPUs): the comparison row."""
    started = time.perf_counter()
    network = inception_network(dataclasses.replace(settings, precision="bf16"), CPU).to(CUDA)
    stats = [
        fid.statistics(
            fid.inception_outputs(
                images,
                network,
                batch_size=settings.batch_size,
                precision=resolve_precision("bf16", CUDA),
                device=CUDA,
                channels_last=settings.channels_last,
            )[0]
        )
        for images in sets
    ]
    return fid.frechet_distance(*stats[0], *stats[1]), time.perf_counter() - started


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument(
        "--data",
        type=Path,
        default=Path("data/raw"),
        help="a folder holding FashionMNIST/raw as the download stage writes",
    )
    arguments.add_argument("--preset", default="fashion_30min_b128")
    arguments.add_argument("--steps", type=int, default=2000, help="steps per precision")
    arguments.add_argument("--minutes", type=float, default=1.0, help="the bf16 training run")
    arguments.add_argument("--n", type=int, default=2000, help="images per FID set")
    arguments.add_argument("--batch-size", type=int, default=200, help="ganlab's FID batch")
    args = arguments.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: this benchmark measures the GPU paths")
    torch.backends.cudnn.benchmark = True  # as the train stage sets it on GPUs
    images, _ = datasets.load_images("fashion_mnist", args.data, train=False)
    print(
        f"{torch.cuda.get_device_name()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"host {cpu_model()} with {torch.get_num_threads()} threads; {len(images)} "
        f"Fashion-MNIST test images; preset {args.preset}\n"
    )
    base = preset_params(args.preset, {"train.eval_every": None, "train.max_minutes": None})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print(f"1. training speed, {args.steps} steps each")
        for precision in ("fp32", "bf16", "fp16"):
            params = {**base, "train": {**base["train"], "max_steps": args.steps}}
            result = train_preset(images, params, precision, tmp)
            finite = all(math.isfinite(v) for row in result.history for v in row)
            print(
                f"   {precision:5} {result.images_seen / result.train_seconds:9.0f} images/s "
                f"({result.steps / result.train_seconds:6.1f} steps/s), losses finite: {finite}"
            )

        params = {**base, "train": {**base["train"], "max_minutes": args.minutes}}
        result = train_preset(images, params, "bf16", tmp)
        print(f"\n2. bf16 for {args.minutes} min: {result.steps} steps")
        config = from_mapping(params)
        fakes = generate(
            result.netG,
            args.n,
            z_dim=config.z_dim,
            latent=config.latent,
            seed=1,
            device=CUDA,
            precision=resolve_precision("bf16", CUDA),
        )
        sets = [images[: args.n], fakes]

        ensure_weights()
        write_pngs(sets[0], tmp / "real")
        write_pngs(sets[1], tmp / "fake")
        total = 2 * args.n
        exact = FidSection(channels_last=False, runtime="torch")  # pytorch-fid's own path
        reference, cpu_seconds = ganlab_fid(sets, exact, CPU)
        rows = [("exact: fp32 on the CPU (the reference)", total / cpu_seconds, reference)]
        try:
            cli_value, cli_seconds = cli_fid(tmp / "real", tmp / "fake", 50, device="cuda")
            rows.append(("pytorch-fid CLI --device cuda", total / cli_seconds, cli_value))
        except RuntimeError as error:  # e.g. pytorch-fid 0.3.0 under a SciPy without disp=
            print(f"the pytorch-fid CLI failed here: {str(error).strip().splitlines()[-1]}")
        modes = {  # the first two as the stages run them, the third for comparison
            "exact: fid.precision fp32 (IEEE fp32)": (FidSection(runtime="torch"), ganlab_fid),
            "fast: fid.precision bf16 (TF32 on GPUs)": (
                FidSection(precision="bf16", runtime="torch"),
                ganlab_fid,
            ),
            "bf16 autocast + folded BN (the CPU fast mode)": (
                FidSection(precision="bf16", runtime="torch"),
                lambda sets, settings, _device: bf16_fid(sets, settings),
            ),
        }
        for name, (settings, score) in modes.items():
            settings = dataclasses.replace(settings, batch_size=args.batch_size)
            score([s[: args.batch_size] for s in sets], settings, CUDA)  # autotuning
            value, seconds = score(sets, settings, CUDA)
            rows.append((name, total / seconds, value))

    print(f"\n3. FID of {args.n} fakes vs {args.n} test images on the GPU")
    print(f"   {'mode':46} {'images/s':>9} {'vs CPU':>7} {'FID':>10} {'|dFID|/FID':>10}")
    for name, rate, value in rows:
        print(
            f"   {name:46} {rate:9.1f} {rate / rows[0][1]:6.2f}x {value:10.4f} "
            f"{abs(value - reference) / reference:10.3%}"
        )


if __name__ == "__main__":
    main()
