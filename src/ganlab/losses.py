"""GAN losses, each a pair of pure functions on D's logits: d_loss and g_loss.

Logits, not probabilities, come in: BCE-with-logits is the numerically stable form
and stays well defined under bf16 autocast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F


class GANLoss(NamedTuple):
    d_loss: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    g_loss: Callable[[torch.Tensor], torch.Tensor]


def bce_d_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0
) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))]; real_label < 1 is one-sided label smoothing."""
    real_target = torch.full_like(real_logits, real_label)
    return F.binary_cross_entropy_with_logits(
        real_logits, real_target
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def non_saturating_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): Goodfellow et al.'s practical generator loss, strong gradients early on."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def minimax_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """log(1 - D(G(z))): the original minimax objective, which saturates when D wins."""
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


LOSSES: dict[str, GANLoss] = {
    "bce": GANLoss(bce_d_loss, non_saturating_g_loss),
    "minimax": GANLoss(bce_d_loss, minimax_g_loss),
}
