"""Model registry: a name maps to a builder of (netG, netD).

A new GAN family is a new row here; the training loop and the params validation
pick it up by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ganlab.models.conditional import (
    LABEL_EMBEDDING,
    ConditionalDiscriminator,
    ConditionalGenerator,
)
from ganlab.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.models.mlp import MLPDiscriminator, MLPGenerator
from ganlab.regularizers import add_spectral_norm_


@dataclass(frozen=True)
class ModelSpec:
    """What a builder needs; everything comes from params.yaml and the dataset."""

    z_dim: int
    image_shape: tuple[int, int, int]
    ngf: int = 64
    ndf: int = 64
    dropout: float = 0.0
    d_norm: str = "batch"
    minibatch_std: bool = False
    spectral_norm: bool = False
    conditioning: str = "none"  # none | projection | acgan (see models.conditional)
    n_classes: int = 0  # the dataset's classes, for conditional models


def _mlp(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    return (
        MLPGenerator(spec.z_dim, spec.image_shape, spec.dropout),
        MLPDiscriminator(spec.image_shape, spec.dropout, spec.minibatch_std),
    )


def _dcgan(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    return (
        DCGANGenerator(spec.z_dim, spec.image_shape, spec.ngf),
        DCGANDiscriminator(
            spec.image_shape, spec.ndf, spec.dropout, spec.d_norm, spec.minibatch_std
        ),
    )


MODELS: dict[str, Callable[[ModelSpec], tuple[nn.Module, nn.Module]]] = {
    "mlp": _mlp,
    "dcgan": _dcgan,
}


def dcgan_init_(module: nn.Module) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02), BatchNorm gamma ~ N(1, 0.02), beta = 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def xavier_init_(module: nn.Module) -> None:
    """Glorot & Bengio (2010): uniform weights scaled by fan-in + fan-out, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


INITS: dict[str, Callable[[nn.Module], None]] = {
    "dcgan": dcgan_init_,
    "xavier": xavier_init_,
    "default": lambda module: None,
}


def build_models(name: str, spec: ModelSpec, init: str = "dcgan") -> tuple[nn.Module, nn.Module]:
    """Build (netG, netD) for a registered model name and apply the init scheme."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if spec.conditioning == "none":
        netG, netD = MODELS[name](spec)
    else:
        netG, netD = MODELS[name](dataclasses.replace(spec, z_dim=spec.z_dim + LABEL_EMBEDDING))
        netG = ConditionalGenerator(netG, spec.n_classes)
        netD = ConditionalDiscriminator(netD, spec.n_classes, spec.conditioning)
    for net in (netG, netD):
        INITS[init](net)
    if spec.spectral_norm:
        add_spectral_norm_(netD)
    return netG, netD


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
