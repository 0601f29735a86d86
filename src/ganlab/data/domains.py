"""Translation tasks: a source and a target domain built from a registered dataset.

- `edges`: edge maps computed from the real images -> the images (paired; pix2pix's
  edges -> photo, here edges -> garment on Fashion-MNIST).
- `classes`: images of `source_class` -> images of `target_class` (unpaired, e.g.
  Sneaker -> Ankle boot; horse -> zebra on CycleGAN's sets). On a paired dataset
  (pix2pix's sets) the i-th images of the two classes stay a pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F

from ganlab.data import datasets

EDGE_THRESHOLD = 0.2  # of each image's strongest gradient: Sobel responses above it are edges
PAIRED_TASK_MODELS = ("pix2pix",)  # models that learn from pairs only


class TaskSettings(Protocol):
    """params.yaml's `translation` section, as far as a task needs it."""

    task: str
    source_class: str
    target_class: str


class TaskParams(Protocol):
    """The params a task is built from; ganlab.config.Config has them (config checks tasks
    with this module, so it can't be imported here)."""

    model: str
    dataset: str
    image_size: int | None
    translation: TaskSettings


@dataclass(frozen=True)
class Domains:
    """uint8 N x C x H x W images of both domains; when paired, target[i] belongs to source[i]."""

    source: torch.Tensor
    target: torch.Tensor
    paired: bool
    names: tuple[str, str]  # what the domains are, for titles and logs
    source_labels: torch.Tensor  # the dataset's class of each source image
    target_class: int | None  # the class translations should have; None when it is the source's


def task_of(config: TaskParams) -> str:
    """`translation.task`, with auto resolved: pix2pix on edges unless the data come paired."""
    task = config.translation.task
    if task != "auto":
        return task
    if config.model in PAIRED_TASK_MODELS and not datasets.DATASETS[config.dataset].paired:
        return "edges"
    return "classes"


def class_index(name: str, class_names: tuple[str, ...], key: str) -> int:
    """A class by name (case-insensitive) or by index; ValueError names the key and the choices."""
    lowered = [c.lower() for c in class_names]
    if name.lower() in lowered:
        return lowered.index(name.lower())
    if name.isdigit() and int(name) < len(class_names):
        return int(name)
    raise ValueError(
        f"translation.{key} = {name!r} is not a class of the dataset: expected one of "
        f"{list(class_names)} (or an index 0..{len(class_names) - 1})"
    )


def check_task(config: TaskParams) -> None:
    """Raise ValueError, naming the key, for a task the model or the dataset can't do."""
    task = task_of(config)
    info = datasets.DATASETS[config.dataset]
    paired = task == "edges" or info.paired
    if config.model in PAIRED_TASK_MODELS and not paired:
        raise ValueError(
            f"model = {config.model!r} learns from pairs, and translation.task = {task!r} on "
            f"{config.dataset} has none: expected task 'edges' or a paired dataset "
            f"({sorted(n for n, d in datasets.DATASETS.items() if d.paired)}), or model 'cyclegan'"
        )
    if task != "classes" or not info.class_names:  # a user folder's classes are read later
        return
    settings = config.translation
    source = class_index(settings.source_class, info.class_names, "source_class")
    target = class_index(settings.target_class, info.class_names, "target_class")
    if source == target:
        raise ValueError(
            f"translation.source_class and target_class are both {info.class_names[source]!r}: "
            "expected two different classes"
        )


def edge_maps(images: torch.Tensor, threshold: float = EDGE_THRESHOLD) -> torch.Tensor:
    """uint8 images -> uint8 edge maps (255 on edges, 0 elsewhere), same shape.

    Sobel gradient magnitude of the luminance, thresholded at a fraction of each image's
    strongest response, so faint and bright images get comparable outlines."""
    gray = images.float().mean(dim=1, keepdim=True) / 255
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel_x, sobel_x.T]).unsqueeze(1)
    gradients = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)
    magnitude = gradients.square().sum(dim=1, keepdim=True).sqrt()
    strongest = magnitude.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    edges = (magnitude > threshold * strongest).to(torch.uint8) * 255
    return edges.expand_as(images).contiguous()


def load_domains(
    config: TaskParams, root: str | Path, train: bool = True, limit: int | None = None
) -> Domains:
    """The task's two domains from the downloaded dataset; `limit` caps each domain's images."""
    images, labels = datasets.load_images(config.dataset, root, train=train, size=config.image_size)
    task = task_of(config)
    if task == "edges":
        images, labels = images[:limit], labels[:limit]
        return Domains(edge_maps(images), images, True, ("edges", config.dataset), labels, None)
    class_names = datasets.class_names(config.dataset, root)
    try:
        source = class_index(config.translation.source_class, class_names, "source_class")
        target = class_index(config.translation.target_class, class_names, "target_class")
    except ValueError as error:
        raise datasets.DataError(str(error)) from error
    source_images, target_images = images[labels == source], images[labels == target]
    paired = datasets.DATASETS[config.dataset].paired
    if paired and len(source_images) != len(target_images):
        raise datasets.DataError(
            f"{config.dataset}: {len(source_images)} {class_names[source]!r} images but "
            f"{len(target_images)} {class_names[target]!r} ones: expected pairs"
        )
    for name, part in ((class_names[source], source_images), (class_names[target], target_images)):
        if len(part) == 0:
            split = "train" if train else "test"
            raise datasets.DataError(
                f"{config.dataset} has no {name!r} images in its {split} split"
            )
    source_images, target_images = source_images[:limit], target_images[:limit]
    return Domains(
        source_images,
        target_images,
        paired,
        (class_names[source], class_names[target]),
        torch.full((len(source_images),), source, dtype=torch.long),
        target,
    )
