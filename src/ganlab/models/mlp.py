"""The fully-connected GAN of Goodfellow et al. (2014), shaped as the classic lessons teach it.

Hidden widths, activations, dropout and G's output are params (the `mlp` section), so each
teaching setup (the Fashion-MNIST lab, the Udacity notes, the MNIST and TensorFlow tutorials)
is a preset rather than a copy of this file. The defaults are the Fashion-MNIST lab's shapes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ganlab.models.layers import batch_layers

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "relu": nn.ReLU,
}
# G's output layer and the low end of the pixel range it produces (and D sees real data in)
OUTPUTS: dict[str, tuple[Callable[[], nn.Module], float]] = {
    "tanh": (nn.Tanh, -1.0),  # data in [-1, 1]
    "sigmoid": (nn.Sigmoid, 0.0),  # data in [0, 1], as the TensorFlow tutorial has it
}


def _stack(widths: Sequence[int], activation: str, dropout: float) -> list[nn.Module]:
    """Linear -> activation -> dropout for each consecutive pair of widths."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(widths):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation](), nn.Dropout(dropout)]
    return layers


class MLPGenerator(nn.Module):
    """z (z_dim) -> hidden widths -> C*H*W, through `output` (tanh: [-1, 1]; sigmoid: [0, 1])."""

    def __init__(
        self,
        z_dim: int,
        image_shape: tuple[int, int, int],
        *,
        dropout: float,
        hidden: Sequence[int],
        activation: str,
        output: str,
    ):
        super().__init__()
        self.image_shape = image_shape
        output_layer, self.pixel_low = OUTPUTS[output]
        self.net = nn.Sequential(
            *_stack([z_dim, *hidden], activation, dropout),
            nn.Linear(hidden[-1] if hidden else z_dim, math.prod(image_shape)),
            output_layer(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.flatten(1)).view(-1, *self.image_shape)


class MLPDiscriminator(nn.Module):
    """C*H*W -> hidden widths -> 1 logit (the loss applies the sigmoid)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        *,
        dropout: float,
        minibatch_std: bool,
        hidden: Sequence[int],
        activation: str,
        minibatch_discrimination: bool,
    ):
        super().__init__()
        widths = [math.prod(image_shape), *hidden]
        batch, extra = batch_layers((widths[-1],), minibatch_std, minibatch_discrimination)
        self.features = nn.Sequential(*_stack(widths, activation, dropout), *batch)
        self.feature_channels = widths[-1] + extra
        self.head = self.head_like(1)

    def head_like(self, outputs: int) -> nn.Module:
        """A linear layer over the features; conditional discriminators add heads of their own."""
        return nn.Linear(self.feature_channels, outputs)

    def features_of(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features_of(x)).view(-1)
