"""GAN losses, each a pair of pure functions on D's raw outputs: d_loss and g_loss.

Raw outputs (logits, critic scores), not probabilities, come in: BCE-with-logits is
the numerically stable form and stays well defined under bf16 autocast. `shown`
maps D's outputs to what the loss history reports as D(x) and D(G(z)): a probability
for the BCE losses, the raw score for critics (Wasserstein, hinge) and LSGAN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F


class GANLoss(NamedTuple):
    d_loss: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    g_loss: Callable[[torch.Tensor], torch.Tensor]
    shown: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid
    # D outputs a probability (D(x) > 0.5 means "real"), so it has an accuracy; critics
    # (Wasserstein, hinge) and LSGAN output scores, which have neither
    probability: bool = True
    # D's loss has a target for real images that real_label sets (one-sided smoothing, LSGAN's b)
    real_target: bool = True

    @property
    def d_output_label(self) -> str:
        """What the D(x), D(G(z)) curves show, for their axis."""
        return "mean probability" if self.probability else "mean critic score"


def d_accuracy(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The fractions of real images D calls real (D(x) > 0.5) and of fakes it calls fake."""
    return torch.stack([(real_logits > 0).float().mean(), (fake_logits < 0).float().mean()])


def bce_d_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0
) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))]; real_label < 1 is one-sided label smoothing."""
    real_target = torch.full_like(real_logits, real_label)
    real_term = F.binary_cross_entropy_with_logits(real_logits, real_target)
    return real_term + F.binary_cross_entropy_with_logits(
        fake_logits, torch.zeros_like(fake_logits)
    )


def non_saturating_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): Goodfellow et al.'s practical generator loss, strong gradients early on."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def minimax_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """log(1 - D(G(z))): the original minimax objective, which saturates when D wins."""
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def wasserstein_d_loss(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, real_label: float = 1.0
) -> torch.Tensor:
    """E[D(G(z))] - E[D(x)]: the critic's estimate of the Wasserstein-1 distance, negated
    (Arjovsky et al., 2017). Needs a Lipschitz critic: weight clipping or a gradient penalty."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


def hinge_d_loss(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, real_label: float = 1.0
) -> torch.Tensor:
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], as in SNGAN (Miyato et al., 2018)."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def hinge_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


def lsgan_d_loss(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, real_label: float = 1.0
) -> torch.Tensor:
    """Least squares (Mao et al., 2017): 1/2 E[(D(x) - b)^2] + 1/2 E[D(G(z))^2], b = real_label."""
    return 0.5 * ((real_scores - real_label) ** 2).mean() + 0.5 * (fake_scores**2).mean()


def lsgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((fake_scores - 1) ** 2).mean()


def _identity(scores: torch.Tensor) -> torch.Tensor:
    return scores


LOSSES: dict[str, GANLoss] = {
    "bce": GANLoss(bce_d_loss, non_saturating_g_loss),
    "minimax": GANLoss(bce_d_loss, minimax_g_loss),
    "wasserstein": GANLoss(wasserstein_d_loss, wasserstein_g_loss, _identity, False, False),
    "hinge": GANLoss(hinge_d_loss, hinge_g_loss, _identity, False, False),
    "lsgan": GANLoss(lsgan_d_loss, lsgan_g_loss, _identity, False),
}
