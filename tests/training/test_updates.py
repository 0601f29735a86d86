"""One D update and one G update, on a fixed batch: each loss moves the way its update asks,
and every statistic lands in the history column of its name."""

import math

import pytest
import torch
from torch import nn

from ganlab.models import build_models
from ganlab.training.distributed import World
from ganlab.training.gan import Batch, GANStep, Nets, d_step, g_step, make_optimizers, model_spec
from ganlab.training.losses import LOSSES
from ganlab.training.params import from_mapping
from ganlab.training.runner import Progress, Stats
from tests.conftest import FP32, tiny_images, tiny_params

CPU = torch.device("cpu")


class ScoreByMean(nn.Module):
    """A D whose score is `weight * mean pixel + bias`: its outputs are known in closed form."""

    def __init__(self, weight: float, bias: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight))
        self.bias = nn.Parameter(torch.tensor(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x.flatten(1).mean(dim=1) + self.bias


def fixed_batch(config, netG: nn.Module, n: int = 16) -> Batch:
    """Real images of n grey levels from -0.9 to 0.9 (so D's scores of them differ) and fakes."""
    torch.manual_seed(0)
    real = torch.linspace(-0.9, 0.9, n).view(n, 1, 1, 1).expand(n, 1, 28, 28).contiguous()
    with torch.no_grad():
        fake = netG(torch.randn(n, config.z_dim))
    return Batch(real, fake, None, None, noise_std=0.0)


def nets_for(config, netD: nn.Module | None = None) -> Nets:
    torch.manual_seed(0)
    netG, built_D = build_models(config.model, model_spec(config, (1, 28, 28), 10), config.init)
    netD = netD or built_D
    return Nets(
        netG,
        netD,
        *make_optimizers(config.optim, config.lr, netG, netD),
        torch.amp.GradScaler("cpu", enabled=False),
    )


def test_each_statistic_is_reported_under_its_own_name():
    """D scores an image by its mean pixel; every reported value is checked against its closed
    form, so two statistics wired into each other's places fail here."""
    config = from_mapping(tiny_params(lr=1e-12, ema={"decay": None}))  # D stays as built
    nets = nets_for(config, ScoreByMean(weight=4.0, bias=1.0))
    batch = fixed_batch(config, nets.netG)
    real_scores = 4.0 * batch.real.flatten(1).mean(dim=1) + 1.0
    fake_scores = 4.0 * batch.fake.flatten(1).mean(dim=1) + 1.0
    assert 0 < (real_scores > 0).float().mean() < 1  # accuracies that tell real from fake
    d_stats = d_step(nets, batch, config, FP32, CPU)
    assert d_stats["d_real"].item() == pytest.approx(torch.sigmoid(real_scores).mean().item())
    assert d_stats["d_fake_d_step"].item() == pytest.approx(
        torch.sigmoid(fake_scores).mean().item()
    )
    assert d_stats["d_acc_real"].item() == pytest.approx((real_scores > 0).float().mean().item())
    assert d_stats["d_acc_fake"].item() == pytest.approx((fake_scores < 0).float().mean().item())
    expected_d = LOSSES["bce"].d_loss(real_scores, fake_scores, 1.0)
    assert d_stats["d_loss"].item() == pytest.approx(expected_d.item())
    batch.fake = nets.netG(torch.randn(16, config.z_dim))  # with G's graph, for G's update
    fake_scores = 4.0 * batch.fake.detach().flatten(1).mean(dim=1) + 1.0
    g_stats = g_step(nets, batch, config, FP32, CPU)
    expected_g = LOSSES["bce"].g_loss(fake_scores)
    assert g_stats["g_loss"].item() == pytest.approx(expected_g.item())
    assert g_stats["d_fake_g_step"].item() == pytest.approx(
        torch.sigmoid(fake_scores).mean().item()
    )


def test_the_step_sums_statistics_into_the_columns_of_their_names(monkeypatch):
    """GANStep's running sums, column by column, are the named statistics of its updates."""
    config = from_mapping(tiny_params())
    images = tiny_images()
    spec = model_spec(config, (1, 28, 28), 10)
    nets = nets_for(config)
    d_values = dict(d_loss=1.0, d_real=2.0, d_fake_d_step=3.0, d_acc_real=4.0, d_acc_fake=5.0)
    g_values = dict(g_loss=6.0, d_fake_g_step=7.0)

    def named(values: dict) -> Stats:
        return Stats.of(**{name: torch.tensor(value) for name, value in values.items()})

    monkeypatch.setattr("ganlab.training.gan.d_step", lambda *args: named(d_values))
    monkeypatch.setattr("ganlab.training.gan.g_step", lambda *args: named(g_values))
    step = GANStep(nets, config, images, None, spec, device=CPU, precision=FP32, world=World())
    progress = Progress(sums=torch.zeros(len(step.columns)))
    step.update(progress, 0, torch.arange(len(images)))
    assert dict(zip(step.columns, progress.sums.tolist(), strict=True)) == d_values | g_values


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_one_d_update_lowers_ds_loss_and_one_g_update_lowers_gs(loss):
    """On a fixed batch, D's loss after D's update is below D's loss before it; likewise G's
    after G's update (D frozen, the same noise): an update that steps the wrong network, or
    ascends its loss, fails here."""
    # wasserstein: a Lipschitz critic, by a parametrization the update keeps
    lipschitz = {"d.spectral_norm": True} if loss == "wasserstein" else {}
    params = tiny_params(model="mlp", loss=loss, lr=1e-3, ema={"decay": None}, **lipschitz)
    config = from_mapping(params)
    nets = nets_for(config)
    torch.manual_seed(1)
    z = torch.randn(16, config.z_dim)
    real = tiny_images(16).float() / 127.5 - 1
    gan_loss = LOSSES[loss]

    def d_loss() -> float:
        with torch.no_grad():
            fake = nets.netG(z)
            return gan_loss.d_loss(nets.netD(real), nets.netD(fake), 1.0).item()

    def g_loss() -> float:
        with torch.no_grad():
            return gan_loss.g_loss(nets.netD(nets.netG(z))).item()

    nets.netG.eval(), nets.netD.eval()  # the MLP's dropout is 0: eval only fixes the losses
    before = d_loss()
    with torch.no_grad():
        fake = nets.netG(z)
    d_step(nets, Batch(real, fake, None, None, noise_std=0.0), config, FP32, CPU)
    after = d_loss()
    assert math.isfinite(after) and after < before
    before = g_loss()
    g_step(nets, Batch(real, nets.netG(z), None, None, noise_std=0.0), config, FP32, CPU)
    after = g_loss()
    assert math.isfinite(after) and after < before
