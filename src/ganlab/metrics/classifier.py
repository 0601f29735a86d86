"""A small CNN trained on the dataset's own labels: a domain feature space for scoring GANs.

Inception was trained on ImageNet photos, far from 28x28 greyscale garments; a
classifier of the dataset itself gives a fast, domain-aware check: FID in its
feature space, a classifier score (the Inception Score analog), and which classes
a generator covers, so a collapsed generator shows up in the numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganlab import checkpoint
from ganlab.device import Precision
from ganlab.images import scale_batch

FEATURE_DIMS = 128
FP32 = Precision("fp32", None)
# channels_last: a training step of batch 128 took 52 ms against 69 contiguous (2-core Xeon).
MEMORY_FORMAT = torch.channels_last


class DomainClassifier(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], n_classes: int):
        super().__init__()
        self.image_shape, self.n_classes = image_shape, n_classes
        channels = image_shape[0]
        height, width = image_shape[1] // 4, image_shape[2] // 4
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            # 32 x (H/2) x (W/2)
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            # 64 x (H/4) x (W/4)
            nn.Flatten(),
            nn.Linear(64 * height * width, FEATURE_DIMS),
            nn.ReLU(inplace=True),
            # 128: the feature space used for FID and KID
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIMS, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [-1, 1] -> (features N x 128, logits N x n_classes)."""
        features = self.body(x)
        return features, self.head(features)


def fit(
    images: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device,
    precision: Precision,
) -> DomainClassifier:
    """Train the classifier on uint8 images with Adam and cross-entropy."""
    torch.manual_seed(seed)
    model = DomainClassifier(tuple(images.shape[1:]), n_classes)
    model.to(device, memory_format=MEMORY_FORMAT)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    images, labels = images.to(device), labels.to(device)
    order_rng = torch.Generator().manual_seed(seed)
    steps = len(images) // batch_size
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=order_rng).to(device)
        for index in tqdm(range(steps), desc=f"classifier epoch {epoch + 1}", unit="step"):
            chosen = order[index * batch_size : (index + 1) * batch_size]
            with precision.autocast(device):
                _, logits = model(
                    scale_batch(images[chosen]).contiguous(memory_format=MEMORY_FORMAT)
                )
            loss = nn.functional.cross_entropy(logits.float(), labels[chosen])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def outputs(
    model: DomainClassifier,
    images: torch.Tensor,
    *,
    device: torch.device,
    precision: Precision,
    batch_size: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images -> (features N x 128 float64, logits N x n_classes float64)."""
    model.eval()
    features, logits = [], []
    for start in range(0, len(images), batch_size):
        with precision.autocast(device):
            batch = scale_batch(images[start : start + batch_size].to(device))
            batch_features, batch_logits = model(batch.contiguous(memory_format=MEMORY_FORMAT))
        features.append(batch_features.float().cpu())
        logits.append(batch_logits.float().cpu())
    return torch.cat(features).double().numpy(), torch.cat(logits).double().numpy()


def accuracy(
    model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor, *, device: torch.device
) -> float:
    _, logits = outputs(model, images, device=device, precision=FP32)
    return float((torch.from_numpy(logits).argmax(dim=1) == labels).double().mean())


def save(path: str | Path, model: DomainClassifier) -> None:
    checkpoint.save(
        path,
        {
            "state_dict": model.state_dict(),
            "image_shape": list(model.image_shape),
            "n_classes": model.n_classes,
        },
    )


def load(path: str | Path, device: torch.device) -> DomainClassifier:
    """The classifier the classifier stage saved, loaded weights-only."""
    saved = checkpoint.load(path)
    model = DomainClassifier(tuple(saved["image_shape"]), saved["n_classes"])
    model.load_state_dict(saved["state_dict"])
    return model.to(device, memory_format=MEMORY_FORMAT).eval()


def class_coverage(
    fake_logits: np.ndarray, real_labels: np.ndarray, n_classes: int, min_share: float = 0.2
) -> dict[str, float | int | list[float]]:
    """How the generated images spread over the classes, against the real class histogram.

    kl: KL(fake histogram || real histogram), 0 for a perfect match and ln(K) for a
    generator that makes one class only. A class counts as covered when it gets at
    least `min_share` of its real share.
    """
    fake_hist = np.bincount(fake_logits.argmax(axis=1), minlength=n_classes) / len(fake_logits)
    real_hist = np.bincount(real_labels, minlength=n_classes) / len(real_labels)
    present = fake_hist > 0
    kl = float(np.sum(fake_hist[present] * np.log(fake_hist[present] / real_hist[present])))
    return {
        "kl": kl,
        "classes_covered": int(np.sum(fake_hist >= min_share * real_hist)),
        "n_classes": n_classes,
        "fake_histogram": [round(float(v), 4) for v in fake_hist],
    }
