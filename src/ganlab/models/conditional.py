"""Class-conditional GANs, built around any registered model's G and D.

G(z, y) feeds the model's own generator its label in one of two ways (`label_input`):

- concat: [z, embed(y)], the generator built for the wider input;
- multiply: z * embed(y), an embedding as wide as z, as the ACGAN code people learn from
  has it (the Keras example, PyTorch-GAN), and params.yaml's default. The label then scales
  every noise unit instead of arriving beside them: on Fashion-MNIST, ACGAN with concat drew
  one image per class (the generator dropped z), with multiply as varied a class as the
  data's; the projection cGAN's FID-2k went from 95.3 to 35.4 (README, the zoo).

D(x, y) comes in two kinds, both on the model's own discriminator features phi(x):

- projection (cGAN-PD, Miyato & Koyama, 2018): psi(phi(x)) + <embed(y), sum-pooled phi(x)>;
- acgan (Odena et al., 2017): psi(phi(x)) plus an auxiliary head of class logits, trained
  with cross-entropy on real and generated images.

Discriminators return (adversarial scores, class logits or None) so the loop treats
both kinds alike.
"""

from __future__ import annotations

import torch
from torch import nn

CONDITIONINGS = ("none", "projection", "acgan")
LABEL_INPUTS = ("concat", "multiply")  # how a conditional G takes its label
LABEL_EMBEDDING = 32  # width of G's label embedding when concatenated to z


def base_inputs(z_dim: int, label_input: str) -> int:
    """How many inputs the wrapped generator takes: z and, concatenated, the label code."""
    return z_dim + LABEL_EMBEDDING if label_input == "concat" else z_dim


class ConditionalGenerator(nn.Module):
    """G(z, y) = base([z, embed(y)]) (concat) or base(z * embed(y)) (multiply); `base`
    takes base_inputs(z_dim, label_input) inputs."""

    def __init__(self, base: nn.Module, n_classes: int, z_dim: int, label_input: str):
        super().__init__()
        if label_input not in LABEL_INPUTS:
            raise ValueError(f"label_input {label_input!r}: expected one of {LABEL_INPUTS}")
        width = LABEL_EMBEDDING if label_input == "concat" else z_dim
        self.embed = nn.Embedding(n_classes, width)
        self.base = base
        self.n_classes = n_classes
        self.label_input = label_input
        self.pixel_low = getattr(base, "pixel_low", -1.0)  # the base's output range

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        code = self.embed(labels).to(z.dtype)
        if self.label_input == "multiply":
            return self.base(z.flatten(1) * code)
        return self.base(torch.cat([z.flatten(1), code], dim=1))


def _pooled(features: torch.Tensor) -> torch.Tensor:
    """Global sum pooling of conv features (B x C x H x W -> B x C); flat features pass."""
    return features.flatten(2).sum(dim=2) if features.dim() == 4 else features


class ConditionalDiscriminator(nn.Module):
    """D(x, y) on a base D with `features_of`, `head`, `feature_channels` and `head_like`."""

    def __init__(self, base: nn.Module, n_classes: int, kind: str):
        super().__init__()
        if kind not in ("projection", "acgan"):
            raise ValueError(f"conditioning {kind!r}: expected 'projection' or 'acgan'")
        self.base = base
        self.kind = kind
        self.n_classes = n_classes
        if kind == "projection":
            self.embed = nn.Embedding(n_classes, base.feature_channels)
        else:
            self.classes = base.head_like(n_classes)

    def features_of(self, x: torch.Tensor) -> torch.Tensor:
        """The base D's hidden features (what feature matching compares)."""
        return self.base.features_of(x)

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = self.features_of(x)
        scores = self.base.head(features).view(-1)
        if self.kind == "projection":
            projection = (self.embed(labels).to(features.dtype) * _pooled(features)).sum(dim=1)
            return scores + projection, None
        return scores, self.classes(features).view(x.shape[0], self.n_classes)


def discriminate(
    netD: nn.Module, x: torch.Tensor, labels: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(adversarial scores, class logits or None) from a plain or a conditional D."""
    if labels is None:
        return netD(x), None
    return netD(x, labels)


def forward_generator(
    netG: nn.Module, z: torch.Tensor, labels: torch.Tensor | None
) -> torch.Tensor:
    """Images from a plain G(z) or a conditional G(z, y)."""
    return netG(z) if labels is None else netG(z, labels)


class OneHotInput(nn.Module):
    """A single-tensor view of G(z, y) for exporting: input [z, one_hot(y)], N x (z_dim + K).

    MLflow model signatures describe one tensor well; this keeps the registered model
    callable from any MLflow client with a plain array."""

    def __init__(self, netG: ConditionalGenerator, z_dim: int):
        super().__init__()
        self.netG = netG
        self.z_dim = z_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.netG(x[:, : self.z_dim], x[:, self.z_dim :].argmax(dim=1))
