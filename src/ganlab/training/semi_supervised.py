"""Semi-supervised GAN training (Salimans et al., 2016): a few labels, the rest unlabeled.

D is a K + 1-way classifier (ganlab.models.semi_supervised). Each step it learns, as any
GAN's D, to tell the (unlabeled) real batch from G's fakes, and also to classify a batch of
the few labeled images; G is trained with feature matching. The product is D's accuracy on
the test set, set against the same network trained on the labeled images alone.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ganlab import checkpoint
from ganlab.config import Config, ConfigError
from ganlab.device import Precision
from ganlab.images import scale_batch
from ganlab.models import ModelSpec, build_models
from ganlab.training.optimizers import optimizer_for


def labeled_indices(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """`per_class` images of each class, chosen at random (seeded): the labeled set, sorted."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = []
    for label in labels.unique().tolist():
        of_class = order[labels[order] == label]
        if len(of_class) < per_class:
            raise ConfigError(
                f"params.yaml: semi_supervised.labels_per_class = {per_class} but class {label} "
                f"has {len(of_class)} training images: expected at most {len(of_class)}"
            )
        chosen.append(of_class[:per_class])
    return torch.cat(chosen).sort().values


class LabeledBatches:
    """Batches of the labeled set, drawn with replacement from a seed and the step alone,
    so a resumed run draws the same ones without any state of its own."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        seed: int,
        low: float = -1.0,
    ) -> None:
        self.images, self.labels = images, labels.long()
        self.batch_size, self.seed, self.low = batch_size, seed, low

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(images scaled to G's pixel range, their classes) for this step."""
        draw = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        rows = torch.randint(len(self.images), (self.batch_size,), generator=draw)
        rows = rows.to(self.images.device)
        return scale_batch(self.images[rows], self.low), self.labels[rows]


def class_loss(netD: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of D's K class logits on labeled real images."""
    return F.cross_entropy(netD.classify(images).float(), labels)


def labeled_only_baseline(
    config: Config,
    spec: ModelSpec,
    batches: LabeledBatches,
    steps: int,
    *,
    device: torch.device,
    precision: Precision,
) -> nn.Module:
    """What the GAN is measured against: the same D (architecture, init, optimizer) trained
    for the same steps on the same labeled batches, with no unlabeled images and no G."""
    torch.manual_seed(config.seed)
    _, netD = build_models(config.model, spec, config.init)
    netD.to(device).train()
    betas = (config.optim.beta1, config.optim.beta2)
    optimizer = optimizer_for(config.optim.d_optimizer, netD, config.optim.d_lr or config.lr, betas)
    for step in tqdm(range(steps), desc="labeled-only baseline", unit="step"):
        images, labels = batches(step)
        with precision.autocast(device):
            loss = class_loss(netD, images, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return netD.eval()


def save_classifier(path: Path, netD: nn.Module, model: str, spec: ModelSpec) -> None:
    """The semi-supervised GAN's product, D, as a weights-only file load_classifier reads."""
    state = {"model": model, "spec": dataclasses.asdict(spec), "state_dict": netD.state_dict()}
    checkpoint.save(path, state)


def load_classifier(path: Path, device: torch.device) -> nn.Module:
    """The trained K + 1-way D (eval mode); `classify(x)` gives class logits for images in
    G's pixel range ([-1, 1], or [0, 1] for sigmoid models)."""
    saved = checkpoint.load(path)
    spec = ModelSpec.from_saved(saved["spec"])
    if not spec.d_classes:
        raise ValueError(f"{path} holds no semi-supervised D: its spec has no d_classes")
    _, netD = build_models(saved["model"], spec, init="default")
    netD.load_state_dict(saved["state_dict"])
    return netD.to(device).eval()


@torch.no_grad()
def test_accuracy(
    netD: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    device: torch.device,
    low: float = -1.0,
    batch_size: int = 1000,
) -> float:
    """The fraction of uint8 `images` whose class D predicts right (eval mode, fp32)."""
    netD.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        batch = scale_batch(images[start : start + batch_size].to(device), low)
        predicted = netD.classify(batch).argmax(dim=1).cpu()
        correct += int((predicted == labels[start : start + batch_size].long()).sum())
    return correct / len(images)


def report(
    netD: nn.Module,
    labeled: LabeledBatches,
    config: Config,
    spec: ModelSpec,
    steps: int,
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    device: torch.device,
    precision: Precision,
) -> dict[str, float]:
    """The semi-supervised GAN's product, D's test accuracy, beside that of the same network
    trained on the labeled images alone for as many steps."""
    images, labels = test
    baseline = labeled_only_baseline(
        config, spec, labeled, steps, device=device, precision=precision
    )
    scores = {
        "labeled_images": len(labeled),
        "test_accuracy": round(
            test_accuracy(netD, images, labels, device=device, low=labeled.low), 4
        ),
        "labeled_only_test_accuracy": round(
            test_accuracy(baseline, images, labels, device=device, low=labeled.low), 4
        ),
    }
    print(
        f"semi-supervised D: test accuracy {scores['test_accuracy']:.4f}; the same network on the "
        f"{len(labeled)} labeled images alone: {scores['labeled_only_test_accuracy']:.4f}"
    )
    return scores
