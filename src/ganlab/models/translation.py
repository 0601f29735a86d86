"""Image-to-image networks: pix2pix's U-Net and PatchGAN, CycleGAN's ResNet generator.

Layouts follow the papers' reference code (Isola et al. 2017, Zhu et al. 2017) with the
width (ngf, ndf) and depth derived from the image side, so 28-pixel Fashion-MNIST and
256-pixel photos use the same classes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MAX_WIDTH_FACTOR = 8  # channels stop growing at 8 x ngf, as in pix2pix


def unet_depth(side: int) -> int:
    """Down-samplings until 1 x 1: 8 for 256 pixels (pix2pix), 5 for 28 (padded to 32)."""
    return max(1, math.ceil(math.log2(side)))


def patch_layers(side: int) -> int:
    """PatchGAN's stride-2 layers: 3 (70 x 70 patches) from 64 pixels up, fewer on small images."""
    return min(3, max(1, int(math.log2(side)) - 3))


class UNetGenerator(nn.Module):
    """pix2pix's U-Net: an encoder-decoder whose mirrored layers are joined by skip connections.

    Images whose side is not a power of two are padded (reflect) to the next one and the
    output is cropped back, so every layer halves or doubles evenly.
    """

    def __init__(self, channels: int, side: int, *, ngf: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.side = side
        depth = unet_depth(side)
        widths = [ngf * min(2**i, MAX_WIDTH_FACTOR) for i in range(depth)]
        self.down = nn.ModuleList()
        previous = channels
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(previous, width, 4, 2, 1, bias=False))
            if 0 < i < depth - 1:  # no norm on the first layer nor at the 1 x 1 bottleneck
                layers.append(nn.BatchNorm2d(width))
            self.down.append(nn.Sequential(*layers))
            previous = width
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            out = widths[i - 1] if i > 0 else channels
            in_channels = widths[i] if i == depth - 1 else 2 * widths[i]
            layers = [nn.ReLU(), nn.ConvTranspose2d(in_channels, out, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(out))
                if dropout > 0 and i >= depth - 3:  # the innermost three decoder layers
                    layers.append(nn.Dropout(dropout))
            else:
                layers.append(nn.Tanh())
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        padded = 2 ** len(self.down)
        pad_h, pad_w = padded - height, padded - width
        if pad_h or pad_w:
            mode = "reflect" if min(pad_h, pad_w) < min(height, width) else "replicate"
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode)
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the decoder directly
        for layer in self.up:
            x = layer(x)
            if skips:
                x = torch.cat([x, skips.pop()], dim=1)
        return x[..., pad_h // 2 : pad_h // 2 + height, pad_w // 2 : pad_w // 2 + width]


class PatchDiscriminator(nn.Module):
    """PatchGAN: a grid of real/fake logits, one per overlapping patch (70 x 70 at 3 layers).

    pix2pix conditions it on the input by stacking input and output channels; CycleGAN
    judges one domain's images alone.
    """

    def __init__(self, channels: int, side: int, *, ndf: int, norm: str, n_layers: int = 0) -> None:
        super().__init__()
        n_layers = n_layers or patch_layers(side)
        Norm = nn.InstanceNorm2d if norm == "instance" else nn.BatchNorm2d
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = ndf  # ndf x S/2 x S/2; each further stride-2 layer halves, the stride-1 ones take 1
        for i in range(1, n_layers + 1):
            out = ndf * min(2**i, MAX_WIDTH_FACTOR)
            stride = 2 if i < n_layers else 1
            layers += [
                nn.Conv2d(width, out, 4, stride, 1, bias=False),
                Norm(out),
                nn.LeakyReLU(0.2),
            ]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))  # 1 x P x P: one logit per patch (30 at 256)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ResnetBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3, bias=False),
            nn.InstanceNorm2d(width),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3, bias=False),
            nn.InstanceNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: c7s1-ngf, two stride-2 convs, residual blocks, two up-convs, c7s1."""

    def __init__(self, channels: int, *, ngf: int, n_blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, ngf, 7, bias=False),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(),
        ]  # ngf x H x W
        for factor in (1, 2):  # (ngf*2) x H/2 x W/2, then (ngf*4) x H/4 x W/4
            layers += [
                nn.Conv2d(ngf * factor, ngf * factor * 2, 3, 2, 1, bias=False),
                nn.InstanceNorm2d(ngf * factor * 2),
                nn.ReLU(),
            ]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]  # (ngf*4) x H/4 x W/4
        for factor in (4, 2):  # (ngf*2) x H/2 x W/2, then ngf x H x W
            layers += [
                nn.ConvTranspose2d(ngf * factor, ngf * factor // 2, 3, 2, 1, 1, bias=False),
                nn.InstanceNorm2d(ngf * factor // 2),
                nn.ReLU(),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]  # C x H x W
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % 4, -width % 4  # two halvings and two doublings
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        return self.net(x)[..., :height, :width]
