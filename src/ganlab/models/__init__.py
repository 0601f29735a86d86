"""Model registry: a name maps to a builder of (netG, netD).

A new GAN family is a new row here; the training loop and the params validation
pick it up by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ganlab.config import Config, check_names
from ganlab.models.conditional import (
    CONDITIONINGS,
    LABEL_INPUTS,
    ConditionalDiscriminator,
    ConditionalGenerator,
    base_inputs,
)
from ganlab.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.models.layers import D_NORMS, add_spectral_norm_
from ganlab.models.mlp import ACTIVATIONS, OUTPUTS, MLPDiscriminator, MLPGenerator
from ganlab.models.semi_supervised import SemiSupervisedDiscriminator
from ganlab.models.translation import PatchDiscriminator, ResnetGenerator, UNetGenerator


@dataclass(frozen=True)
class ModelSpec:
    """What a builder needs, all of it from params.yaml (whose schema, ganlab.config, holds the
    defaults: none are written here) and the dataset; built by keyword only."""

    z_dim: int
    image_shape: tuple[int, int, int]
    ngf: int
    ndf: int
    dropout: float
    d_norm: str
    minibatch_std: bool
    spectral_norm: bool
    conditioning: str  # none | projection | acgan (see models.conditional)
    n_classes: int  # the dataset's classes, for conditional models (0: unconditional)
    # the fully-connected model's shape (params' mlp section; see models.mlp)
    g_hidden: tuple[int, ...]
    d_hidden: tuple[int, ...]
    g_activation: str
    d_activation: str
    output: str  # tanh: pixels in [-1, 1] | sigmoid: in [0, 1]
    minibatch_discrimination: bool  # Salimans et al. (2016), in D
    # semi-supervised GAN: D classifies into these K classes + fake (0: a plain D)
    d_classes: int
    label_input: str  # a conditional G's label: multiply | concat (models.conditional)
    self_modulation: bool  # G's BatchNorm scale and shift from z (Chen et al., 2019)
    progressive_bits: int  # D's extra input channels: progressive augmentation's random bits

    @classmethod
    def from_saved(cls, values: dict) -> ModelSpec:
        """A spec as a file stores it (dataclasses.asdict: tuples saved as lists). Files saved
        before a field existed hold none: their conditional G concatenated, their G was not
        self-modulated and their D took the images alone."""
        before = {"label_input": "concat", "self_modulation": False, "progressive_bits": 0}
        values = before | dict(values)
        for key in ("image_shape", "g_hidden", "d_hidden"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def d_input_shape(spec: ModelSpec) -> tuple[int, int, int]:
    """The images' shape with progressive augmentation's bit channels added."""
    channels, height, width = spec.image_shape
    return channels + spec.progressive_bits, height, width


def _mlp(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    return (
        MLPGenerator(
            spec.z_dim,
            spec.image_shape,
            dropout=spec.dropout,
            hidden=spec.g_hidden,
            activation=spec.g_activation,
            output=spec.output,
        ),
        MLPDiscriminator(
            d_input_shape(spec),
            dropout=spec.dropout,
            minibatch_std=spec.minibatch_std,
            hidden=spec.d_hidden,
            activation=spec.d_activation,
            minibatch_discrimination=spec.minibatch_discrimination,
        ),
    )


def _dcgan(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    return (
        DCGANGenerator(
            spec.z_dim, spec.image_shape, ngf=spec.ngf, self_modulation=spec.self_modulation
        ),
        DCGANDiscriminator(
            d_input_shape(spec),
            ndf=spec.ndf,
            dropout=spec.dropout,
            norm=spec.d_norm,
            minibatch_std=spec.minibatch_std,
            minibatch_discrimination=spec.minibatch_discrimination,
        ),
    )


MODELS: dict[str, Callable[[ModelSpec], tuple[nn.Module, nn.Module]]] = {
    "mlp": _mlp,
    "dcgan": _dcgan,
}


@dataclass(frozen=True)
class TranslatorSpec:
    """What an image-to-image builder needs: the images' channels and side, widths, depth."""

    channels: int
    side: int
    ngf: int
    ndf: int
    resnet_blocks: int


def _pix2pix(spec: TranslatorSpec) -> dict[str, nn.Module]:
    """G maps source to target; D judges (source, image) pairs stacked on channels."""
    return {
        "G": UNetGenerator(spec.channels, spec.side, ngf=spec.ngf),
        "D": PatchDiscriminator(2 * spec.channels, spec.side, ndf=spec.ndf, norm="batch"),
    }


def _cyclegan(spec: TranslatorSpec) -> dict[str, nn.Module]:
    """G: source -> target, F: target -> source; D judges the target domain, D_source the source."""
    return {
        "G": ResnetGenerator(spec.channels, ngf=spec.ngf, n_blocks=spec.resnet_blocks),
        "F": ResnetGenerator(spec.channels, ngf=spec.ngf, n_blocks=spec.resnet_blocks),
        "D": PatchDiscriminator(spec.channels, spec.side, ndf=spec.ndf, norm="instance"),
        "D_source": PatchDiscriminator(spec.channels, spec.side, ndf=spec.ndf, norm="instance"),
    }


# Image-to-image models: a name maps to a builder of named networks
# (see ganlab.training.translation).
TRANSLATORS: dict[str, Callable[[TranslatorSpec], dict[str, nn.Module]]] = {
    "pix2pix": _pix2pix,
    "cyclegan": _cyclegan,
}


def dcgan_init_(module: nn.Module) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02), BatchNorm gamma ~ N(1, 0.02), beta = 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
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


def translates(model: str) -> bool:
    """True for image-to-image models (pix2pix, CycleGAN), False for noise-to-image GANs."""
    return model in TRANSLATORS


def check_params(config: Config) -> None:
    """Every params.yaml key that names a model registry's row names one."""
    check_names(
        config,
        {
            "model": [*MODELS, *TRANSLATORS],
            "init": INITS,
            "d_norm": D_NORMS,
            "conditioning": CONDITIONINGS,
            "label_input": LABEL_INPUTS,
            "activation": ACTIVATIONS,
            "output": OUTPUTS,
        },
    )


def pixel_low(netG: nn.Module) -> float:
    """The low end of G's pixel range: -1 for tanh outputs (every model's default), 0 for
    sigmoid ones. Real images are scaled into the same range for D."""
    return getattr(netG, "pixel_low", -1.0)


def build_models(name: str, spec: ModelSpec, init: str) -> tuple[nn.Module, nn.Module]:
    """Build (netG, netD) for a registered model name and apply the init scheme."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if spec.conditioning == "none":
        netG, netD = MODELS[name](spec)
    else:
        inputs = base_inputs(spec.z_dim, spec.label_input)
        netG, netD = MODELS[name](dataclasses.replace(spec, z_dim=inputs))
        netG = ConditionalGenerator(netG, spec.n_classes, spec.z_dim, spec.label_input)
        netD = ConditionalDiscriminator(netD, spec.n_classes, spec.conditioning)
    if spec.d_classes:
        netD = SemiSupervisedDiscriminator(netD, spec.d_classes)
    for net in (netG, netD):
        INITS[init](net)
    if spec.progressive_bits:
        zero_bit_inputs_(netD, spec)
    if spec.spectral_norm:
        add_spectral_norm_(netD)
    return netG, netD


def zero_bit_inputs_(netD: nn.Module, spec: ModelSpec) -> None:
    """Progressive augmentation's bit channels start with zero weights in D's first layer, as in
    the authors' code (boschresearch/PA-GAN): D's verdict does not jump when a bit enters."""
    channels, height, width = spec.image_shape
    first = next(m for m in netD.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    if isinstance(first, nn.Conv2d):
        expected, bits = channels + spec.progressive_bits, (slice(None), slice(channels, None))
        given = first.in_channels
    else:  # a fully-connected D reads the images flattened, channel by channel
        expected = (channels + spec.progressive_bits) * height * width
        bits, given = (slice(None), slice(channels * height * width, None)), first.in_features
    if given != expected:
        raise ValueError(f"D's first layer takes {given} inputs, expected {expected} with the bits")
    with torch.no_grad():
        first.weight[bits] = 0


def build_translator(name: str, spec: TranslatorSpec, init: str) -> dict[str, nn.Module]:
    """Build a registered image-to-image model's networks and apply the init scheme."""
    if name not in TRANSLATORS:
        raise KeyError(f"unknown translation model {name!r}; choose one of {sorted(TRANSLATORS)}")
    nets = TRANSLATORS[name](spec)
    for net in nets.values():
        INITS[init](net)
    return nets


def memory_format_for(net: nn.Module) -> torch.memory_format:
    """channels_last for convolutional nets (faster convolutions), the default for the rest."""
    conv = any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in net.modules())
    return torch.channels_last if conv else torch.contiguous_format


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
