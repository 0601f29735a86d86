"""The GAN variants: each loss, regularizer and trick as params of the one training loop."""

import dataclasses
import itertools
from pathlib import Path

import pytest
import torch
from torch import nn

import ganlab.training.gan
import ganlab.training.runner
from ganlab import presets
from ganlab.models.conditional import forward_generator
from ganlab.models.layers import MinibatchStdDev, add_spectral_norm_
from ganlab.training import losses
from ganlab.training.augment import AUGMENTATIONS, diff_augment
from ganlab.training.ema import ema_decay_at, update_ema_
from ganlab.training.losses import LOSSES
from ganlab.training.optimizers import lr_factor_by_fraction
from ganlab.training.params import from_mapping
from ganlab.training.regularizers import clip_weights_, gradient_penalty, r1_penalty
from ganlab.training.runner import Hooks
from tests.conftest import tiny_images, tiny_params, train_on_cpu

# The papers' settings (ganlab.presets, the README's `-S` lines) and two more switches; the
# classic lessons' presets, with their own datasets and shapes, are tested in test_presets.py.
PRESETS = {
    **presets.PAPERS,
    "r1": {"regularize.r1_weight": 10.0},
    "tricks": {
        "d.minibatch_std": True,
        "ema.decay": 0.9,
        "regularize.instance_noise": 0.1,
        "regularize.diffaugment": ["color", "translation", "cutout"],
        "regularize.real_label": 0.9,
        "init": "xavier",
    },
}


def test_wasserstein_hinge_and_lsgan_known_values():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0])
    assert losses.wasserstein_d_loss(real, fake).item() == pytest.approx(0.0 - 3.0)
    assert losses.wasserstein_g_loss(fake).item() == pytest.approx(0.0)
    assert losses.hinge_d_loss(torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.0])).item() == (
        pytest.approx(0.25 + 0.5)
    )
    assert losses.lsgan_d_loss(torch.tensor([1.0]), torch.tensor([0.0])).item() == 0.0
    assert losses.lsgan_g_loss(torch.tensor([0.0])).item() == pytest.approx(0.5)


def linear_critic(weight: list[float]) -> nn.Module:
    critic = nn.Linear(len(weight), 1, bias=False)
    critic.weight.data = torch.tensor([weight])
    return critic


def test_gradient_penalty_and_r1_of_a_linear_critic():
    critic = linear_critic([3.0, 4.0])  # grad D = w everywhere, |w| = 5
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((5 - 1) ** 2)
    assert r1_penalty(critic, real).item() == pytest.approx(25.0)


def test_clipping_and_spectral_norm_bound_the_critic():
    critic = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    clip_weights_(critic, 0.01)
    assert all(p.abs().max() <= 0.01 for p in critic.parameters())
    normed = add_spectral_norm_(nn.Sequential(nn.Linear(16, 16)))
    normed.train()
    for _ in range(30):  # power iterations run on each training forward pass
        normed(torch.randn(2, 16))
    assert torch.linalg.matrix_norm(normed[0].weight, ord=2).item() == pytest.approx(1.0, abs=1e-2)


def test_minibatch_stddev_appends_the_batch_std():
    x = torch.tensor([[[[0.0]]], [[[2.0]]]])  # two 1x1x1 images: std 1 (biased)
    out = MinibatchStdDev()(x)
    assert out.shape == (2, 2, 1, 1)
    assert out[:, 1].flatten().tolist() == [1.0, 1.0]


def test_ema_update_known_answer():
    ema, net = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
    ema.weight.data.fill_(0.0)
    net.weight.data.fill_(1.0)
    update_ema_(ema, net, decay=0.9)
    assert ema.weight.item() == pytest.approx(0.1)


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_diffaugment_keeps_shape_and_lets_gradients_through(name):
    x = torch.rand(4, 1, 28, 28, requires_grad=True)
    out = diff_augment(x, [name])
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_cutout_blanks_a_quarter_of_each_image():
    out = diff_augment(torch.ones(8, 1, 28, 28), ["cutout"])
    blank = (out == 0).float().mean(dim=(1, 2, 3))
    assert torch.all(blank > 0.05) and torch.all(blank <= 0.25 + 1e-6)


MLP_LACKS = ("ngf", "ndf", "d.norm", "g.self_modulation")


@pytest.mark.parametrize("model", ["dcgan", "mlp"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_train_with_finite_losses(preset, model, tmp_path: Path, cpu):
    # the DCGAN widths, G's BatchNorm and D's normalization of a paper's preset: the mlp has none
    preset_params = {
        k: v for k, v in PRESETS[preset].items() if model != "mlp" or k not in MLP_LACKS
    }
    settings = {"model": model, **preset_params, "epochs": 2, "batch_size": 16}  # tiny data
    config = from_mapping(tiny_params(**settings))
    result = train_on_cpu(config, tiny_images(), tmp_path / "c.pt", torch.arange(64) % 10)
    assert result.history, "no log row was written"
    history = torch.tensor(result.history)
    if not LOSSES[config.loss].probability:  # a critic has no accuracy: those columns are NaN
        history = history[:, :-2]
    assert torch.isfinite(history).all()
    labels = torch.tensor([0, 4, 9]) if config.classes.conditional != "none" else None
    samples = forward_generator(result.netG, torch.randn(3, config.z_dim), labels)
    assert samples.shape == (3, 1, 28, 28) and torch.isfinite(samples).all()


def test_n_critic_updates_g_once_per_n_d_updates(tmp_path: Path, cpu, monkeypatch):
    config = from_mapping(tiny_params(epochs=5, **PRESETS["wgan_clip"]))  # 4 steps an epoch
    made = []
    original = ganlab.training.gan.make_optimizers

    def recording(*args):
        made.extend(original(*args))
        return made

    monkeypatch.setattr(ganlab.training.gan, "make_optimizers", recording)
    result = train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    optG, optD = made
    assert result.steps == 20
    assert int(optD.state_dict()["state"][0]["step"]) == 20
    assert int(optG.state_dict()["state"][0]["step"]) == 4


def test_n_gen_updates_g_n_times_per_d_update(tmp_path: Path, cpu, monkeypatch):
    config = from_mapping(tiny_params(epochs=2, n_gen=3))  # 4 steps an epoch
    made = []
    original = ganlab.training.gan.make_optimizers
    monkeypatch.setattr(
        ganlab.training.gan, "make_optimizers", lambda *a: made.extend(original(*a)) or made
    )
    train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    optG, optD = made
    assert int(optD.state_dict()["state"][0]["step"]) == 8
    assert int(optG.state_dict()["state"][0]["step"]) == 24


@pytest.mark.parametrize("g_fakes", ["reuse", "fresh"])
def test_g_scores_d_steps_fakes_or_fresh_ones(g_fakes, tmp_path: Path, cpu, monkeypatch):
    seen: dict[str, list[torch.Tensor]] = {"d": [], "g": []}
    for name, key in (("d_step", "d"), ("g_step", "g")):
        original = getattr(ganlab.training.gan, name)

        def recording(nets, batch, *args, original=original, key=key):
            seen[key].append(batch.fake)
            return original(nets, batch, *args)

        monkeypatch.setattr(ganlab.training.gan, name, recording)
    config = from_mapping(tiny_params(epochs=1, g_fakes=g_fakes))
    train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    same = [d is g for d, g in zip(seen["d"], seen["g"], strict=True)]
    assert same == [g_fakes == "reuse"] * 4


def test_gs_update_leaves_ds_gradients_as_ds_step_left_them(tmp_path: Path, cpu, monkeypatch):
    """D's weights get no gradients in G's update (d_step zeroes them anyway: computing them was
    wasted work), and D is trainable again after it."""
    checked = []
    original = ganlab.training.gan.g_step

    def checking(nets, *args):
        before = [p.grad.clone() for p in nets.netD.parameters()]
        out = original(nets, *args)
        after = [p.grad for p in nets.netD.parameters()]
        checked.append(all(torch.equal(a, b) for a, b in zip(after, before, strict=True)))
        assert all(p.requires_grad for p in nets.netD.parameters())
        return out

    monkeypatch.setattr(ganlab.training.gan, "g_step", checking)
    train_on_cpu(from_mapping(tiny_params(epochs=1)), tiny_images(), tmp_path / "c.pt")
    assert checked == [True] * 4


def test_max_steps_trains_that_many_steps_whatever_the_epochs(tmp_path: Path, cpu):
    frames = []
    config = from_mapping(tiny_params(epochs=1, train={"max_steps": 10}))  # 4 an epoch
    result = train_on_cpu(
        config,
        tiny_images(),
        tmp_path / "c.pt",
        hooks=Hooks(on_frame=lambda step, frame: frames.append(step)),
    )
    assert result.steps == 10 and result.epochs == 3  # the third one partial
    assert frames == [0, 4, 8, 10] and result.history[-1][0] == 10


def test_lr_factor_known_values():
    assert [lr_factor_by_fraction("linear", 0.0, f) for f in (0.0, 0.25, 1.0)] == [1.0, 0.75, 0.0]
    assert [lr_factor_by_fraction("linear", 0.5, f) for f in (0.25, 0.5, 0.75)] == [1.0, 1.0, 0.5]
    assert lr_factor_by_fraction("none", 0.0, 0.9) == 1.0


def test_lr_decay_falls_to_zero_over_the_planned_steps(tmp_path: Path, cpu):
    config = from_mapping(
        tiny_params(lr=1e-3, optim={"d_lr": 4e-3, "lr_decay": "linear"}, train={"max_steps": 10})
    )
    result = train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    lr_at = {int(row[0]): row[-1] for row in result.history}  # the lr of each row's last step
    assert lr_at == pytest.approx({s: 1e-3 * (1 - (s - 1) / 10) for s in (2, 4, 6, 8, 10)})
    optimizers = torch.load(tmp_path / "c.pt", weights_only=True)["nets"]
    assert optimizers["optD"]["param_groups"][0]["lr"] == pytest.approx(4e-3 * 0.1)


def test_lr_decay_follows_the_clock_when_max_minutes_ends_the_run(tmp_path: Path, cpu, monkeypatch):
    clock = iter(range(10**6))  # each look at the clock: a second later
    monkeypatch.setattr(ganlab.training.runner.time, "perf_counter", lambda: float(next(clock)))
    config = from_mapping(
        tiny_params(
            epochs=1000,
            optim={"lr_decay": "linear", "lr_decay_start": 0.5},
            train={"max_minutes": 1},
        )
    )
    result = train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    lrs = [row[-1] for row in result.history]
    assert result.steps < 100 < 4 * 1000  # the clock ended the run, not the 4,000 steps planned
    assert lrs[0] == 2e-4 and lrs[-1] < 2e-4 / 4 < lrs[len(lrs) // 2]
    assert all(a >= b for a, b in itertools.pairwise(lrs))


def test_weight_clipping_holds_after_training(tmp_path: Path, cpu):
    config = from_mapping(tiny_params(epochs=1, **PRESETS["wgan_clip"]))
    train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)["nets"]["netD"]
    assert all(
        v.abs().max() <= 0.01 + 1e-7 for k, v in state.items() if "weight" in k or "bias" in k
    )


def test_ema_warmup_follows_g_early_and_reaches_the_decay_later(tmp_path: Path, cpu):
    warm = from_mapping(tiny_params(ema={"decay": 0.999, "warmup": True}))
    assert (
        ema_decay_at(warm.ema, 0) == pytest.approx(0.1) and ema_decay_at(warm.ema, 10**6) == 0.999
    )
    no_warmup = from_mapping(tiny_params(ema={"decay": 0.999, "warmup": False}))
    assert ema_decay_at(no_warmup.ema, 0) == 0.999

    def distance_to_g(config) -> float:
        train_on_cpu(config, tiny_images(), tmp_path / f"{config.ema.warmup}.pt")
        nets = torch.load(tmp_path / f"{config.ema.warmup}.pt", weights_only=True)["nets"]
        return sum(  # weights: the EMA's BatchNorm statistics are its own (standing statistics)
            (nets["netG_ema"][k].float() - v.float()).abs().sum().item()
            for k, v in nets["netG"].items()
            if k.endswith(("weight", "bias"))
        )

    cold = from_mapping(tiny_params(epochs=2, ema={"decay": 0.999, "warmup": False}))
    assert (
        distance_to_g(dataclasses.replace(cold, ema=dataclasses.replace(cold.ema, warmup=True)))
        < distance_to_g(cold) / 2
    )


def test_ema_generator_is_what_training_returns(tmp_path: Path, cpu):
    config = from_mapping(tiny_params(epochs=1, ema={"decay": 0.5}))
    result = train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)["nets"]
    ema = state["netG_ema"]
    assert all(torch.equal(ema[k], v) for k, v in result.netG.state_dict().items())
    assert any(not torch.equal(ema[k], state["netG"][k]) for k in ema if ema[k].is_floating_point())


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_feature_matching_trains_g_on_ds_mean_features(model, tmp_path: Path, cpu, monkeypatch):
    """G's loss is ||E f(x) - E f(G(z))||^2 on D's hidden features, not D's verdict."""
    config = from_mapping(tiny_params(model=model, epochs=1, feature_matching=True))
    seen = []
    original = ganlab.training.gan.feature_matching_loss

    def recording(netD, real, fake, precision, device):
        loss = original(netD, real, fake, precision, device)
        with torch.no_grad():
            expected = (netD.features_of(real).mean(0) - netD.features_of(fake).mean(0)).pow(2)
        seen.append((loss.item(), expected.sum().item()))
        return loss

    monkeypatch.setattr(ganlab.training.gan, "feature_matching_loss", recording)
    result = train_on_cpu(config, tiny_images(), tmp_path / "c.pt")
    assert len(seen) == result.steps
    assert all(loss == pytest.approx(expected, rel=1e-5) for loss, expected in seen)
    # the history's g_loss is the FM loss: each row the mean of its log_every steps
    last_two = (seen[-1][0] + seen[-2][0]) / 2  # tiny_params: log_every 2
    assert result.history[-1][3] == pytest.approx(last_two, rel=1e-5)
