import math

import pytest
import torch

from ganlab.training import losses
from ganlab.training.losses import LOSSES, bce_d_loss, minimax_g_loss, non_saturating_g_loss


def test_bce_at_an_undecided_discriminator_is_2_ln2():
    zeros = torch.zeros(4)
    assert bce_d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert non_saturating_g_loss(zeros).item() == pytest.approx(math.log(2))
    assert minimax_g_loss(zeros).item() == pytest.approx(-math.log(2))


def test_label_smoothing_targets_the_real_label():
    # With real target 0.9 the real term is minimized at D(x) = 0.9, i.e. logit ln 9.
    logit = torch.full((3,), math.log(9.0))
    smoothed = bce_d_loss(logit, torch.full((3,), -50.0), real_label=0.9).item()
    entropy_09 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert smoothed == pytest.approx(entropy_09, abs=1e-6)


def test_non_saturating_loss_keeps_gradients_when_d_wins():
    fake_logits = torch.full((1,), -10.0, requires_grad=True)
    non_saturating_g_loss(fake_logits).backward()
    strong = fake_logits.grad.abs().item()
    fake_logits.grad = None
    minimax_g_loss(fake_logits).backward()
    weak = fake_logits.grad.abs().item()
    assert strong > 0.99 and weak < 1e-4


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_is_finite_and_differentiable(name):
    real = torch.randn(8, requires_grad=True)
    fake = torch.randn(8, requires_grad=True)
    loss = LOSSES[name]
    total = loss.d_loss(real, fake, 1.0) + loss.g_loss(fake)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(real.grad).all()


def test_d_accuracy_counts_reals_called_real_and_fakes_called_fake():
    real = torch.tensor([2.0, -1.0, 0.5, 3.0])  # logits: 3 of 4 above 0 (D(x) > 0.5)
    fake = torch.tensor([-2.0, 1.0])  # 1 of 2 below 0
    assert losses.d_accuracy(real, fake).tolist() == [0.75, 0.5]
    assert losses.LOSSES["bce"].d_output_label == "mean probability"
    assert losses.LOSSES["wasserstein"].d_output_label == "mean critic score"
