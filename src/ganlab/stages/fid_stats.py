"""Stage `fid_stats`: pytorch-fid reference statistics of the real training images.

A fixed random subset (seed 0, independent of the training seed) of `fid.n_real`
training images, so the statistics change only with the dataset and fid params
and DVC keeps them cached across training experiments.
"""

from __future__ import annotations

import time
from pathlib import Path

from ganlab.config import load_config
from ganlab.data import datasets
from ganlab.device import pick_device
from ganlab.io import write_json
from ganlab.metrics import fid
from ganlab.metrics.features import (
    inception_features,
    inception_network,
    inception_precision,
    runtime_name,
)
from ganlab.metrics.inception import ensure_weights
from ganlab.stages import StageError, parser, run_stage


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--data", type=Path, required=True, help="data root from download")
    arguments.add_argument("--out", type=Path, required=True, help="stats .npz to write")
    arguments.add_argument(
        "--features", type=Path, required=True, help="real features .npy (KID, P/R)"
    )
    arguments.add_argument(
        "--info", type=Path, required=True, help="counts, timing and provenance JSON"
    )
    args = arguments.parse_args()
    config = load_config(args.params, datasets.check_params)
    datasets.verify(config.dataset, args.data, config.download.trusted_md5)
    images, _ = datasets.load_images(config.dataset, args.data, train=True, size=config.image_size)
    if config.fid.n_real > len(images):
        raise StageError(
            f"fid.n_real = {config.fid.n_real} is more than the {len(images)} training "
            f"images of {config.dataset}"
        )
    chosen, _ = datasets.reference_rows(len(images), config.fid.n_real)
    images = images[chosen]

    device = pick_device()
    precision = inception_precision(config.fid, device)
    weights = ensure_weights()  # where they came from: downloaded or rebuilt
    network = inception_network(config.fid, device)
    started = time.perf_counter()
    features, _ = inception_features(images, network, config.fid, device, "fid_stats")
    seconds = time.perf_counter() - started
    mu, sigma = fid.statistics(features)
    fid.save_stats(args.out, mu, sigma)
    fid.save_features(args.features, features)
    write_json(  # not a DVC metric: `dvc exp show` leads with the GAN's scores
        args.info,
        {
            "n_real": len(images),
            "feature_dims": int(features.shape[1]),
            "seconds": round(seconds, 1),
            "images_per_second": round(len(images) / seconds, 1),
            "precision": precision.name,
            "device": device.type,
            "inception_weights": weights,
            "inception_runtime": runtime_name(config.fid, device),
        },
    )
    print(f"FID reference statistics of {len(images)} images -> {args.out} ({seconds:.0f} s)")


if __name__ == "__main__":
    run_stage(main)
