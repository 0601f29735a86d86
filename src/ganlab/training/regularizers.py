"""Critic regularizers, each a small function the training loop calls when its param is set.

They run in fp32 outside autocast: penalties on input gradients need the precision.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Critic = Callable[[torch.Tensor], torch.Tensor]  # images -> one score each (D with its labels)


@torch.no_grad()
def clip_weights_(netD: nn.Module, clip_value: float) -> None:
    """WGAN's weight clipping (Arjovsky et al., 2017): every D parameter into [-c, c]."""
    for parameter in netD.parameters():
        parameter.clamp_(-clip_value, clip_value)


def _input_gradients(critic: Critic, inputs: torch.Tensor) -> torch.Tensor:
    inputs = inputs.detach().requires_grad_(True)
    outputs = critic(inputs)
    (gradients,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return gradients.flatten(1)


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al., 2017): E[(||grad D(x_hat)|| - 1)^2] on random interpolates."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    interpolates = alpha * real.detach() + (1 - alpha) * fake.detach()
    return ((_input_gradients(critic, interpolates).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(critic: Critic, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): E[||grad D(x)||^2] on real data; the caller scales it."""
    return _input_gradients(critic, real).pow(2).sum(dim=1).mean()
