"""The EMA generator samples with BatchNorm statistics of its own weights."""

import copy

import pytest
import torch

from ganlab.models import build_models
from ganlab.training import gan
from ganlab.training.ema import batch_norms, standing_statistics_, update_ema_
from ganlab.training.params import from_mapping
from tests.conftest import FP32, tiny_images, tiny_params, tiny_spec, train_on_cpu

CPU = torch.device("cpu")


def ema_of_a_moved_generator() -> tuple[torch.nn.Module, torch.Tensor]:
    """An EMA whose weights lag G's while its copied BatchNorm statistics are G's; and noise."""
    netG, _ = build_models("dcgan", tiny_spec(8, (1, 28, 28), ngf=8, ndf=8), "dcgan")
    ema = copy.deepcopy(netG).requires_grad_(False)
    with torch.no_grad():
        for p in netG.parameters():
            p.mul_(3).add_(0.5)  # G moves far from the average
        netG.train()
        for _ in range(20):  # and its running statistics follow it
            netG(torch.randn(64, 8))
    update_ema_(ema, netG, decay=0.99)
    return ema, torch.randn(2000, 8, generator=torch.Generator().manual_seed(5))


def test_standing_statistics_are_the_ema_generators_own():
    ema, z = ema_of_a_moved_generator()
    with torch.no_grad():
        own = copy.deepcopy(ema).train()(z)  # BatchNorm on the batch: the EMA's own statistics
        copied = ema.eval()(z)
        config = from_mapping(tiny_params(z_dim=8))
        standing = standing_statistics_(ema, config, CPU, FP32)(z)
    scale = own.abs().mean()
    assert (copied - own).abs().mean() > 0.5 * scale  # G's statistics don't fit the EMA's weights
    assert (standing - own).abs().mean() < 0.1 * scale


def test_standing_statistics_are_a_function_of_the_weights_alone():
    """Measured twice, from any earlier statistics: the same buffers, bit for bit (resume)."""
    config = from_mapping(tiny_params(z_dim=8))
    ema, _ = ema_of_a_moved_generator()
    first = {
        k: v.clone() for k, v in standing_statistics_(ema, config, CPU, FP32).state_dict().items()
    }
    for norm in batch_norms(ema):
        norm.running_mean.add_(1.0)
    second = standing_statistics_(ema, config, CPU, FP32)
    assert not second.training and all(norm.momentum == 0.1 for norm in batch_norms(ema))
    assert all(torch.equal(first[k], v) for k, v in second.state_dict().items())


def test_sync_batchnorm_keeps_its_copied_statistics():
    """Only rank 0 samples; a train-mode SyncBatchNorm forward there would wait for the others."""
    ema, _ = ema_of_a_moved_generator()
    ema = torch.nn.SyncBatchNorm.convert_sync_batchnorm(ema)
    before = [norm.running_mean.clone() for norm in batch_norms(ema)]
    config = from_mapping(tiny_params(z_dim=8))
    assert not standing_statistics_(ema, config, CPU, FP32).training
    assert all(
        torch.equal(a, n.running_mean) for a, n in zip(before, batch_norms(ema), strict=True)
    )


def test_statistics_are_measured_once_per_ema_update(tmp_path, monkeypatch):
    """The end of a run asks for the EMA generator three times at one step (the last frame, the
    returned generator, the saved one): the statistics are measured once, as costly as sampling."""
    measured: list[int] = []
    measure = gan.standing_statistics_

    def counting(generator, *args):
        measured.append(1)
        return measure(generator, *args)

    monkeypatch.setattr(gan, "standing_statistics_", counting)
    config = from_mapping(tiny_params(epochs=1, ema={"decay": 0.9}))
    result = train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    assert len(result.frames) == 2  # step 0 and the end of the epoch...
    assert len(measured) == 2  # ...and the returned generator reuses the last measurement


@pytest.mark.parametrize(("n_critic", "n_gen"), [(1, 1), (2, 1), (3, 2)])
def test_the_ema_warm_up_counts_g_updates_not_d_steps(tmp_path, monkeypatch, n_critic, n_gen):
    """With n_critic D steps per G turn, the warm-up's clock is the number of G updates so far
    (0, 1, 2, ...), as each EMA update follows one; counting D steps would end it early."""
    seen = []
    monkeypatch.setattr(gan, "ema_decay_at", lambda ema, n: seen.append(n) or 0.5)
    params = tiny_params(epochs=1, n_critic=n_critic, n_gen=n_gen, ema={"decay": 0.999})
    params["train"] = {"max_steps": 6, "eval_every": None}
    train_on_cpu(from_mapping(params), tiny_images(), tmp_path / "c.pt")
    assert seen == list(range(6 // n_critic * n_gen))
