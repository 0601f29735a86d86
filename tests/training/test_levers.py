"""The quality levers of issue 41, each by its mechanism: self-modulated BatchNorm, top-k G
updates, lazy R1, progressive augmentation of D's input."""

from pathlib import Path

import pytest
import torch
from torch import nn

import ganlab.training.gan
from ganlab.models import build_models
from ganlab.models.layers import SelfModulatedBatchNorm2d
from ganlab.training.augment import progressive_bits
from ganlab.training.gan import Batch, d_step, g_step, model_spec
from ganlab.training.losses import LOSSES
from ganlab.training.params import from_mapping
from ganlab.training.regularizers import r1_penalty
from tests.conftest import FP32, tiny_images, tiny_params, train_on_cpu
from tests.training.test_updates import CPU, fixed_batch, nets_for


def test_self_modulated_batchnorm_scales_and_shifts_by_z():
    """The same features under two z come out differently, and G's norms are the modulated
    ones exactly when self_modulation is on."""
    torch.manual_seed(0)
    layer = SelfModulatedBatchNorm2d(channels=4, z_dim=8)
    nn.init.normal_(layer.scale[2].weight, 0, 0.5)
    x = torch.randn(6, 4, 5, 5)
    z1, z2 = torch.randn(6, 8), torch.randn(6, 8)
    assert not torch.allclose(layer(x, z1), layer(x, z2))
    assert torch.allclose(layer(x, z1), layer(x, z1))
    for on in (False, True):
        config = from_mapping(tiny_params(g={"self_modulation": on}))
        netG, _ = build_models("dcgan", model_spec(config, (1, 28, 28), 10), config.init)
        modulated = [m for m in netG.modules() if isinstance(m, SelfModulatedBatchNorm2d)]
        plain = [m for m in netG.modules() if type(m) is nn.BatchNorm2d and m.affine]
        assert (len(modulated) > 0, len(plain) > 0) == (on, not on)


def test_a_self_modulated_generator_trains(cpu, tmp_path: Path):
    config = from_mapping(tiny_params(epochs=1, g={"self_modulation": True}))
    result = train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    assert result.history and torch.isfinite(torch.tensor(result.history)).all()


def test_topk_keeps_exactly_the_k_fakes_d_rates_most_real(monkeypatch):
    config = from_mapping(tiny_params(ema={"decay": None}, g={"topk": 0.5}))
    nets = nets_for(config)
    batch = fixed_batch(config, nets.netG)
    batch.fake.requires_grad_(True)  # G's update needs a graph to the fakes
    batch.topk = 5
    seen = []
    loss = LOSSES[config.loss]
    recording = loss._replace(
        g_loss=lambda output: seen.append(output.detach()) or loss.g_loss(output)
    )
    monkeypatch.setitem(LOSSES, config.loss, recording)
    with torch.no_grad():
        scores = nets.netD(batch.fake).float()
    g_step(nets, batch, config, FP32, CPU)
    assert len(seen[0]) == 5
    assert torch.allclose(seen[0].sort().values, scores.topk(5).values.sort().values, atol=1e-6)


def test_topk_anneals_from_the_whole_batch_to_its_floor(cpu, tmp_path: Path):
    """k = batch * max(0.5 ** epoch, 0.25) over 4 steps an epoch: 16, 8, 4, 4 of 16 fakes."""
    config = from_mapping(tiny_params(epochs=4, g={"topk": 0.25, "topk_decay": 0.5}))
    ks = []
    original = ganlab.training.gan.g_step

    def recording(nets, batch, *args):
        ks.append(batch.topk)
        return original(nets, batch, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ganlab.training.gan, "g_step", recording)
        train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    assert ks == [16] * 4 + [8] * 4 + [4] * 8


def test_r1_penalty_is_its_closed_form_on_a_linear_d():
    """D(x) = w . x has grad w everywhere: R1 = ||w||^2 on any images."""
    torch.manual_seed(0)
    w = torch.randn(28 * 28)
    real = torch.randn(8, 1, 28, 28)
    assert r1_penalty(lambda x: x.flatten(1) @ w, real).item() == pytest.approx(
        w.pow(2).sum().item(), rel=1e-5
    )


def test_lazy_r1_runs_every_n_d_steps_weighted_n_times(monkeypatch):
    params = tiny_params(
        ema={"decay": None}, d={"norm": "none"}, regularize={"r1_weight": 2.0, "r1_every": 3}
    )
    config = from_mapping(params)
    nets = nets_for(config)
    batch = fixed_batch(config, nets.netG)
    monkeypatch.setattr(ganlab.training.gan, "r1_penalty", lambda critic, real: torch.tensor(5.0))
    losses = []
    for step in range(6):
        batch.step = step
        without = LOSSES[config.loss].d_loss(
            nets.netD(batch.real).float(), nets.netD(batch.fake).float(), 1.0
        )
        stats = d_step(nets, batch, config, FP32, CPU)
        losses.append(float(stats["d_loss"]) - without.item())
    # the penalty's term, weight * every / 2 * R1 = 2 * 3 / 2 * 5 = 15, on steps 0 and 3 only;
    # D's update between the two losses is at lr 2e-4: a small drift on the other steps
    assert [round(x) for x in losses] == [15, 0, 0, 15, 0, 0]


def test_progressive_bits_and_the_sign_they_set():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 4, 4)
    out, sign = progressive_bits(x, bits=3, active=2)
    assert out.shape == (64, 4, 4, 4) and torch.equal(out[:, :1], x)
    used, unused = out[:, 1:3], out[:, 3]
    assert set(used.unique().tolist()) == {0.0, 1.0} and torch.all(unused == 0)
    assert torch.all(used == used[:, :, :1, :1])  # one bit per image: a constant map
    ones = used[:, :, 0, 0].sum(dim=1)
    assert torch.equal(sign, torch.where(ones % 2 == 1, -1.0, 1.0))
    _, none_yet = progressive_bits(x, bits=3, active=0)
    assert torch.all(none_yet == 1)


def test_progressive_augmentation_adds_a_bit_channel_at_each_scheduled_step(cpu, tmp_path: Path):
    """Bits every 2 steps, at most 2: D's first layer takes 1 + 2 channels; what D sees has no
    bit before step 2, one from step 2 and two from step 4."""
    params = tiny_params(
        epochs=2, ema={"decay": None}, regularize={"progressive_bits": 2, "progressive_every": 2}
    )
    config = from_mapping(params)
    seen: list[tuple[int, int]] = []  # (step, bits in use) of every input D got in a D step
    original = ganlab.training.gan.d_step

    def recording(nets, batch, *args):
        handle = nets.netD.register_forward_pre_hook(
            lambda module, inputs: seen.append((batch.step, _bits_in_use(inputs[0])))
        )
        try:
            return original(nets, batch, *args)
        finally:
            handle.remove()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ganlab.training.gan, "d_step", recording)
        train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    first_conv = next(m for m in _netD(config).modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 3
    assert {step: bits for step, bits in seen} == {0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2}


def _bits_in_use(x: torch.Tensor) -> int:
    assert x.shape[1] == 3
    return int((x[:, 1:].abs().flatten(2).amax(dim=2) > 0).any(dim=0).sum())


def _netD(config) -> nn.Module:
    return build_models("dcgan", model_spec(config, (1, 28, 28), 10), config.init)[1]


@pytest.mark.parametrize("model", ["dcgan", "mlp"])
def test_a_bit_entering_leaves_a_new_ds_verdict_as_it_was(model):
    """The bits' weights in D's first layer start at 0 (the authors' code): at the step a bit
    enters, D's verdict is the one it gives the image alone; the images' weights are drawn."""
    config = from_mapping(
        tiny_params(model=model, regularize={"progressive_bits": 2, "progressive_every": 1})
    )
    torch.manual_seed(0)
    netD = build_models(model, model_spec(config, (1, 28, 28), 10), config.init)[1].eval()
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    with_bits, _ = progressive_bits(x, bits=2, active=2)
    without, _ = progressive_bits(x, bits=2, active=0)
    assert (with_bits[:, 1:] == 1).any()
    with torch.no_grad():
        assert torch.equal(netD(with_bits), netD(without))
    first = next(m for m in netD.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    assert first.weight.abs().sum() > 0


def test_flipped_bits_flip_ds_verdict():
    """Under the bits, D's real/fake score is multiplied by the sign: the d_loss a D would
    get for the flipped images equals the loss of the negated scores."""
    config = from_mapping(
        tiny_params(ema={"decay": None}, regularize={"progressive_bits": 1, "progressive_every": 1})
    )
    nets = nets_for(config)
    batch = fixed_batch(config, nets.netG)
    batch.active_bits = 1
    torch.manual_seed(3)
    output, _ = ganlab.training.gan.judge(nets, batch.real, None, config.regularize, batch)
    torch.manual_seed(3)
    x, sign = progressive_bits(batch.real, 1, 1)
    assert torch.allclose(output, nets.netD(x) * sign, atol=1e-6)
    assert (sign < 0).any() and (sign > 0).any()


def test_a_batch_without_levers_is_judged_as_before():
    config = from_mapping(tiny_params(ema={"decay": None}))
    nets = nets_for(config)
    batch = fixed_batch(config, nets.netG)
    assert isinstance(batch, Batch) and batch.topk is None and batch.active_bits == 0
    output, _ = ganlab.training.gan.judge(nets, batch.real, None, config.regularize, batch)
    assert torch.equal(output, nets.netD(batch.real))
