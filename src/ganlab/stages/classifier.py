"""Stage `classifier`: a small CNN on the dataset's training split, for domain-aware scores.

Trained in fp32 with its own seed and params, so GAN experiments reuse it from DVC's cache.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ganlab.config import load_config
from ganlab.data import datasets
from ganlab.device import pick_device
from ganlab.io import write_json
from ganlab.metrics import classifier
from ganlab.stages import parser, run_stage


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--data", type=Path, required=True, help="data root from download")
    arguments.add_argument("--out", type=Path, required=True, help="classifier weights to write")
    arguments.add_argument("--info", type=Path, required=True, help="test accuracy, timing JSON")
    args = arguments.parse_args()
    config = load_config(args.params, datasets.check_params)
    settings = config.classifier
    datasets.verify(config.dataset, args.data, config.download.trusted_md5)
    size = config.image_size
    train_images, train_labels = datasets.load_images(config.dataset, args.data, True, size=size)
    if settings.subset is not None and settings.subset < len(train_images):
        # drawn, not the first N: an image folder lists its classes one after another
        chosen = torch.randperm(
            len(train_images), generator=torch.Generator().manual_seed(settings.seed)
        )[: settings.subset]
        train_images, train_labels = train_images[chosen], train_labels[chosen]
    test_images, test_labels = datasets.load_images(config.dataset, args.data, False, size=size)
    n_classes = len(datasets.class_names(config.dataset, args.data))
    device = pick_device()
    started = time.perf_counter()
    model = classifier.fit(
        train_images,
        train_labels,
        n_classes,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        seed=settings.seed,
        device=device,
        precision=classifier.FP32,
    )
    seconds = time.perf_counter() - started
    test_accuracy = classifier.accuracy(model, test_images, test_labels, device=device)
    classifier.save(args.out, model)
    write_json(  # not a DVC metric: `dvc exp show` leads with the GAN's scores
        args.info,
        {
            "test_accuracy": round(test_accuracy, 4),
            "epochs": settings.epochs,
            "train_images": len(train_images),
            "seconds": round(seconds, 1),
            "device": device.type,
        },
    )
    print(
        f"domain classifier: test accuracy {test_accuracy:.2%} after {settings.epochs} epochs "
        f"on {len(train_images):,} images"
    )


if __name__ == "__main__":
    run_stage(main)
