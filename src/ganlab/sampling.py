"""Use trained generators: load them (weights-only), draw or translate uint8 images reproducibly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganlab import checkpoint
from ganlab.device import Precision
from ganlab.images import sample_latent, scale_batch, to_uint8
from ganlab.models import ModelSpec, TranslatorSpec, build_models, build_translator, pixel_low
from ganlab.models.conditional import ConditionalGenerator, forward_generator

ONE_HOT_PREFIX = "netG."  # OneHotInput's attribute holding the conditional G


class TranslatorFileError(ValueError):
    """A generator file holds an image-to-image model where a noise-to-image one was expected."""


def load_generator(path: str | Path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The generator saved by the train stage (weights-only), in eval mode, and its metadata."""
    saved = checkpoint.load(path)
    return build_generator(saved, saved.get("state_dict", {}), device, str(path))


def build_generator(
    saved: dict[str, Any], state_dict: dict[str, Any], device: torch.device, source: str
) -> tuple[nn.Module, dict[str, Any]]:
    """The generator `saved` (a generator file's fields, or a logged model's metadata)
    describes, with `state_dict`'s weights, in eval mode; and `saved`."""
    if saved.get("kind") == "translator":
        raise TranslatorFileError(
            f"{source} holds a {saved['model']} translation model, which maps images to images: "
            "expected a noise-to-image generator (its translations are in reports/figures)"
        )
    netG, _ = build_models(saved["model"], ModelSpec.from_saved(saved["spec"]), init="default")
    # a conditional G is logged to MLflow inside OneHotInput, which names it netG
    netG.load_state_dict({k.removeprefix(ONE_HOT_PREFIX): v for k, v in state_dict.items()})
    return netG.to(device).eval(), saved


@torch.no_grad()
def generate(
    netG: nn.Module,
    n: int,
    *,
    z_dim: int,
    latent: str,
    seed: int,
    device: torch.device,
    precision: Precision,
    batch_size: int = 500,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """n uint8 images (CPU) from a seeded latent draw, in batches.

    A conditional G draws the given class `labels` (n integers), or every class equally
    often (0, 1, ..., K-1, 0, ...) when none are given, as FID against the data wants."""
    labels = class_labels(netG, n, labels)
    noise = torch.Generator().manual_seed(seed)
    images = []
    for start in range(0, n, batch_size):
        z = sample_latent(min(batch_size, n - start), z_dim, latent, torch.device("cpu"), noise)
        batch_labels = None if labels is None else labels[start : start + len(z)].to(device)
        with precision.autocast(device):
            fake = forward_generator(netG, z.to(device), batch_labels)
            images.append(to_uint8(fake, pixel_low(netG)).cpu())
    return torch.cat(images)


def n_classes(netG: nn.Module) -> int:
    """The classes a conditional generator knows; 0 for an unconditional one."""
    return netG.n_classes if isinstance(netG, ConditionalGenerator) else 0


def class_labels(netG: nn.Module, n: int, labels: torch.Tensor | None) -> torch.Tensor | None:
    """Checked labels for n images: None for unconditional G, balanced classes by default."""
    classes = n_classes(netG)
    if not classes:
        if labels is not None:
            raise ValueError("this generator is not class-conditional: it takes no class labels")
        return None
    if labels is None:
        return torch.arange(n) % classes
    labels = torch.as_tensor(labels, dtype=torch.long).expand(n)
    if labels.min() < 0 or labels.max() >= classes:
        got = labels.unique().tolist()
        raise ValueError(f"class labels must be in 0..{classes - 1}, got {got}")
    return labels


@torch.no_grad()
def translate(
    net: nn.Module,
    images: torch.Tensor,
    *,
    device: torch.device,
    precision: Precision,
    batch_size: int = 256,
) -> torch.Tensor:
    """uint8 images -> uint8 translations (CPU), in batches."""
    out = []
    for start in range(0, len(images), batch_size):
        batch = scale_batch(images[start : start + batch_size].to(device))
        with precision.autocast(device):
            out.append(to_uint8(net(batch.contiguous(memory_format=torch.channels_last))).cpu())
    return torch.cat(out)


def example_rows(
    nets: dict[str, nn.Module],
    source: torch.Tensor,
    target: torch.Tensor | None,
    *,
    device: torch.device,
    precision: Precision,
) -> torch.Tensor:
    """Per example: input | translation | reconstruction (CycleGAN) | target (paired data).

    Returned as one uint8 batch, row by row, for a grid with `columns(...)` images per row."""
    translated = translate(nets["G"], source, device=device, precision=precision)
    columns = [source, translated]
    if "F" in nets:
        columns.append(translate(nets["F"], translated, device=device, precision=precision))
    if target is not None:
        columns.append(target)
    return torch.stack(columns, dim=1).flatten(0, 1)


CYCLE_MODELS = ("cyclegan",)  # models with a way back (F), so rows show reconstructions


def n_columns(model: str, paired: bool) -> int:
    """Images per example row: input, translation, reconstruction (cycle models), target (pairs)."""
    return 2 + (model in CYCLE_MODELS) + paired


def load_translator(
    path: Path, device: torch.device
) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """The generators saved by save_translator, in eval mode on `device`, and the metadata."""
    saved = checkpoint.load(path)
    if saved.get("kind") != "translator":
        raise ValueError(f"{path} holds a noise-to-image generator, not a translation model")
    nets = build_translator(saved["model"], TranslatorSpec(**saved["spec"]), init="default")
    generators = {}
    for name, state in saved["generators"].items():
        nets[name].load_state_dict(state)
        generators[name] = nets[name].to(device, memory_format=torch.channels_last).eval()
    return generators, saved
