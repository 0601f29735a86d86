"""Small layers shared by the model families."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MinibatchStdDev(nn.Module):
    """Appends the batch's mean feature standard deviation as one more channel (Karras et al.,
    2018): D can see when a batch lacks variety, a remedy for mode collapse."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = x.float().std(dim=0, unbiased=False).mean()
        extra = std.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])
        return torch.cat([x, extra], dim=1)


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al., 2016): each sample's features, projected
    through a learned tensor T to `kernels` rows of `kernel_dim`, are compared (L1) with every
    other sample's; D sees how close each sample is to the rest of its batch, so a batch of
    near-copies (a collapsed G) is easy to spot. Appends `kernels` channels (constant over
    the spatial dimensions of conv features)."""

    def __init__(self, in_features: int, kernels: int = 50, kernel_dim: int = 5):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x.flatten(1) @ self.T.to(x.dtype)).view(-1, self.kernels, self.kernel_dim).float()
        distance = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(dim=3)  # N x N x kernels
        closeness = torch.exp(-distance).sum(dim=1) - 1  # minus each sample's own exp(0)
        extra = closeness.to(x.dtype).view(*closeness.shape, *(1,) * (x.dim() - 2))
        return torch.cat([x, extra.expand(-1, -1, *x.shape[2:])], dim=1)


def batch_layers(
    shape: tuple[int, ...], minibatch_std: bool, minibatch_discrimination: bool
) -> tuple[list[nn.Module], int]:
    """The layers that let D compare a sample with its batch, on features of `shape` (C or
    C x H x W), and how many channels they add."""
    layers: list[nn.Module] = []
    channels = 0
    if minibatch_discrimination:
        discrimination = MinibatchDiscrimination(math.prod(shape))
        layers.append(discrimination)
        channels += discrimination.kernels
    if minibatch_std:
        layers.append(MinibatchStdDev())
        channels += 1
    return layers, channels


def d_norm_layer(kind: str, channels: int) -> nn.Module:
    """D's normalization: BatchNorm (DCGAN), LayerNorm over C, H, W (WGAN-GP), or none (SNGAN)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


D_NORMS = ("batch", "layer", "none")


def add_spectral_norm_(netD: nn.Module) -> nn.Module:
    """SNGAN (Miyato et al., 2018): spectral normalization on every conv and linear layer of D,
    and on the projection discriminator's class embedding, as Miyato & Koyama (2018) do: an
    unbounded embedding lets the class term outgrow the normalized rest of D."""
    for name, module in list(netD.named_children()):
        if isinstance(module, nn.Conv2d | nn.Linear | nn.Embedding):
            setattr(netD, name, nn.utils.parametrizations.spectral_norm(module))
        else:
            add_spectral_norm_(module)
    return netD


# DCGAN's image-facing layers, rewritten as the same sums in shapes that CPU kernels handle
# well. Each keeps its parent's parameters, initialization and state dict; only forward
# differs. Measured on a 2-core Xeon (AVX-512), batch 64, forward and backward: the seed layer
# 3.1 -> 0.6 ms, D's first layer 3.3 -> 1.5 ms (with the input's gradient), G's last 2.6 ->
# 1.8 ms; oneDNN's kernels for one image channel and for a 1x1 input are the slow ones (three
# channels take the same layers, not timed).


class SeedConvTranspose2d(nn.ConvTranspose2d):
    """G's first layer: a k x k transposed convolution of the 1 x 1 noise, which is a matrix
    product of z with the weights; computed as one, giving channels-last output."""

    def __init__(self, in_channels: int, out_channels: int, side: int):
        super().__init__(in_channels, out_channels, side, 1, 0, bias=False)

    def forward(self, z: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        n = z.shape[0]
        _, channels, height, width = self.weight.shape
        weight = self.weight.permute(0, 2, 3, 1).reshape(self.in_channels, -1)  # z -> H, W, C
        out = z.reshape(n, self.in_channels) @ weight.to(z.dtype)
        return out.view(n, height, width, channels).permute(0, 3, 1, 2)


class SpaceToDepthConv2d(nn.Conv2d):
    """D's first layer, a 4 x 4 stride-2 padding-1 convolution, as padding, space-to-depth (each
    2 x 2 block of pixels to 4 channels) and a 2 x 2 stride-1 convolution whose weights are the
    4 x 4 ones rearranged the same way."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = F.pixel_unshuffle(F.pad(x, (1, 1, 1, 1)), 2)
        weight = F.pixel_unshuffle(self.weight, 2)
        return F.conv2d(
            blocks.contiguous(memory_format=torch.channels_last),
            weight.contiguous(memory_format=torch.channels_last),
            self.bias,
        )


class DepthToSpaceConvTranspose2d(nn.ConvTranspose2d):
    """G's last layer, a 4 x 4 stride-2 padding-1 transposed convolution: the adjoint of
    SpaceToDepthConv2d, a 2 x 2 transposed convolution to 4 channels per image channel,
    depth-to-space and a crop of the padding."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=bias)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        weight = F.pixel_unshuffle(self.weight, 2).contiguous(memory_format=torch.channels_last)
        out = F.pixel_shuffle(F.conv_transpose2d(x, weight), 2)[:, :, 1:-1, 1:-1]
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1).to(out.dtype)
        return out


class SelfModulatedBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are functions of z (Chen et al., "On Self Modulation for
    Generative Adversarial Networks", ICLR 2019): gamma(z) = 1 + MLP(z), beta(z) = MLP(z), each
    with one hidden layer of 32 ReLUs, in place of BatchNorm's learned constants."""

    def __init__(self, channels: int, z_dim: int, hidden: int = 32):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        self.shift = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        gamma = 1 + self.scale(z).to(x.dtype)[:, :, None, None]
        beta = self.shift(z).to(x.dtype)[:, :, None, None]
        return self.norm(x) * gamma + beta
