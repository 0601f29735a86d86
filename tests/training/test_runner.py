import math
import shutil
from pathlib import Path

import pytest
import torch

from ganlab import checkpoint
from ganlab.device import resolve_precision
from ganlab.images import scale_batch, to_uint8
from ganlab.models import MODELS
from ganlab.models.conditional import CONDITIONINGS
from ganlab.training import losses, runner
from ganlab.training.gan import train
from ganlab.training.params import from_mapping
from ganlab.training.runner import Hooks, NonFiniteLossError
from tests.conftest import FP32, tiny_images, tiny_params, train_on_cpu


def test_uint8_round_trip_is_exact():
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_uint8(scale_batch(pixels)), pixels)
    assert scale_batch(pixels).min() == -1 and scale_batch(pixels).max() == 1


# What each loss needs to be a valid configuration (a Lipschitz critic for Wasserstein).
LOSS_NEEDS = {"wasserstein": {"regularize.clip_value": 0.01}}


def tiny_labels(n: int = 64) -> torch.Tensor:
    return torch.arange(n) % 10


@pytest.mark.parametrize("conditional", CONDITIONINGS)
@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("loss", sorted(losses.LOSSES))
def test_every_model_and_loss_trains_with_finite_losses(
    model, loss, conditional, tmp_path: Path, cpu
):
    needs = LOSS_NEEDS.get(loss, {}) | {"classes.conditional": conditional}
    config = from_mapping(tiny_params(model=model, loss=loss, epochs=1, **needs))
    rows, epochs = [], []
    result = train_on_cpu(
        config,
        tiny_images(),
        tmp_path / "ckpt.pt",
        tiny_labels(),
        hooks=Hooks(rows.append, lambda step, samples: epochs.append(samples)),
    )
    assert result.steps == 64 // config.batch_size
    assert rows and all(
        math.isfinite(row["d_loss"]) and math.isfinite(row["g_loss"]) for row in rows
    )
    if losses.LOSSES[loss].shown is torch.sigmoid:  # probabilities; critics report raw scores
        assert all(
            0 <= row[key] <= 1
            for row in rows
            for key in ("d_real", "d_fake_d_step", "d_fake_g_step", "d_acc_real", "d_acc_fake")
        )
    else:  # a critic's score has no "real" threshold: no accuracy
        assert all(math.isnan(row["d_acc_real"]) and math.isnan(row["d_acc_fake"]) for row in rows)
    assert (
        len(epochs) == 2 and epochs[1].shape == (16, 1, 28, 28) and epochs[1].dtype == torch.uint8
    )
    untrained = tiny_params(model=model, loss=loss, epochs=1, lr=1e-12, **needs)
    fresh = train_on_cpu(
        from_mapping(untrained), tiny_images(), tmp_path / "other.pt", tiny_labels()
    )
    changed = [
        not torch.equal(a, b)
        for a, b in zip(
            result.netG.state_dict().values(), fresh.netG.state_dict().values(), strict=True
        )
        if a.is_floating_point()
    ]
    assert any(changed)


def test_bf16_autocast_training_runs_on_cpu_in_bf16(tmp_path: Path, cpu):
    config = from_mapping(tiny_params(epochs=1, model="dcgan", precision="bf16"))
    precision = resolve_precision("bf16", cpu)
    seen = set()

    def probe(module, inputs, output):
        if isinstance(output, torch.Tensor):
            seen.add(output.dtype)

    with torch.nn.modules.module.register_module_forward_hook(probe):
        result = train(
            config,
            tiny_images(),
            device=cpu,
            precision=precision,
            checkpoint_path=tmp_path / "ckpt.pt",
            run_id="run",
        )
    assert torch.bfloat16 in seen  # the layers really ran in bf16
    assert all(math.isfinite(v) for row in result.history for v in row)
    exact = train_on_cpu(config, tiny_images(), tmp_path / "fp32.pt")
    assert not torch.equal(  # and it is not fp32 under another name
        next(iter(result.netG.state_dict().values())), next(iter(exact.netG.state_dict().values()))
    )


class Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_bit_identical_weights(tmp_path: Path, cpu):
    # the lr decay too: it follows the steps, so a resumed run picks it up where it was
    config = from_mapping(
        tiny_params(epochs=3, model="dcgan", dropout=0.2, optim={"lr_decay": "linear"})
    )
    whole = train_on_cpu(config, tiny_images(), tmp_path / "a.pt")

    def stop_at_step_7(row):
        if row["step"] >= 7:
            raise Interrupt

    checkpoint_path = tmp_path / "b.pt"
    with pytest.raises(Interrupt):
        train_on_cpu(config, tiny_images(), checkpoint_path, hooks=Hooks(on_log=stop_at_step_7))
    assert checkpoint.load(checkpoint_path)["progress"]["step"] == 6  # checkpoint_every = 3
    resumed = train_on_cpu(config, tiny_images(), checkpoint_path)
    assert resumed.resumed_from_step == 6
    assert resumed.steps == whole.steps
    for a, b in zip(
        whole.netG.state_dict().values(), resumed.netG.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert resumed.history == whole.history
    assert resumed.frame_steps == whole.frame_steps == [0, 4, 8, 12]  # untrained, each epoch
    assert all(torch.equal(a, b) for a, b in zip(resumed.frames, whole.frames, strict=True))


def test_checkpoint_of_other_params_is_not_resumed(tmp_path: Path, cpu):
    path = tmp_path / "ckpt.pt"
    train_on_cpu(from_mapping(tiny_params(epochs=1)), tiny_images(), path)
    other = train_on_cpu(from_mapping(tiny_params(epochs=1, lr=1e-3)), tiny_images(), path)
    assert other.resumed_from_step is None


def test_checkpoint_of_other_code_or_other_images_is_not_resumed(tmp_path: Path, cpu, monkeypatch):
    """The same params on one changed pixel, or under changed training code, start afresh: a
    model trained half on the old images or code would pass for one of the new."""
    path, config = tmp_path / "ckpt.pt", from_mapping(tiny_params(epochs=1))
    first = train_on_cpu(config, tiny_images(), path)
    assert train_on_cpu(config, tiny_images(), path).resumed_from_step == first.steps
    other_images = tiny_images()
    other_images[0, 0, 0, 0] = 1
    assert train_on_cpu(config, other_images, path).resumed_from_step is None
    train_on_cpu(config, tiny_images(), path)
    monkeypatch.setattr(runner, "code_digest", lambda: "edited code")
    assert train_on_cpu(config, tiny_images(), path).resumed_from_step is None
    monkeypatch.undo()
    edited = tmp_path / "ganlab"
    shutil.copytree(runner.PACKAGE / "training", edited / "training")
    before = runner.code_digest(("training",), edited)
    (edited / "training" / "losses.py").write_text("# edited\n", encoding="utf-8")
    assert runner.code_digest(("training",), edited) != before


def test_non_finite_loss_stops_with_step_and_keeps_last_good_checkpoint(
    tmp_path: Path, cpu, monkeypatch
):
    config = from_mapping(tiny_params(epochs=2))
    real_d_loss = losses.bce_d_loss
    calls = {"n": 0}

    def poisoned(real_logits, fake_logits, real_label):
        calls["n"] += 1
        loss = real_d_loss(real_logits, fake_logits, real_label)
        return loss * float("nan") if calls["n"] > 5 else loss

    monkeypatch.setitem(
        losses.LOSSES, "bce", losses.GANLoss(poisoned, losses.non_saturating_g_loss)
    )
    path = tmp_path / "ckpt.pt"
    with pytest.raises(NonFiniteLossError, match=r"d_loss became nan by step 6"):
        train(config, tiny_images(), device=cpu, precision=FP32, checkpoint_path=path, run_id="run")
    state = checkpoint.load(path)
    assert state["progress"]["step"] == 4  # the end of epoch 1; the NaN came in epoch 2
    assert all(
        torch.isfinite(v).all() for v in state["nets"]["netG"].values() if v.is_floating_point()
    )


def test_time_budget_stops_mid_epoch_with_a_final_frame(tmp_path: Path, cpu):
    config = from_mapping(tiny_params(epochs=50, train={"max_minutes": 1e-9}))
    frames = []
    result = train_on_cpu(
        config,
        tiny_images(),
        tmp_path / "c.pt",
        hooks=Hooks(on_frame=lambda step, samples: frames.append(step)),
    )
    assert result.steps == 1 and result.epochs == 1  # one step, then out of time
    assert frames == [0, 1] and len(result.frames) == 2  # untrained, and where it stopped


def test_frames_every_n_steps_start_untrained_and_end_at_the_last_step(tmp_path: Path, cpu):
    config = from_mapping(
        tiny_params(epochs=3, render={"frame_every": 5, "n_samples": 4})  # 4 steps an epoch
    )
    frames = []
    result = train_on_cpu(
        config,
        tiny_images(),
        tmp_path / "c.pt",
        hooks=Hooks(on_frame=lambda step, frame: frames.append((step, frame.shape))),
    )
    assert [step for step, _ in frames] == result.frame_steps == [0, 5, 10, 12]
    assert result.frames[0].shape == (4, 1, 28, 28)  # render.n_samples fixed samples
    untrained = tiny_params(epochs=3, lr=1e-12, render={"frame_every": 5, "n_samples": 4})
    still = train_on_cpu(from_mapping(untrained), tiny_images(), tmp_path / "d.pt")
    assert torch.equal(still.frames[0], result.frames[0])  # step 0: before any update
    assert not torch.equal(result.frames[-1], result.frames[0])


def test_the_history_so_far_is_handed_out_after_every_row_and_on_resume(tmp_path: Path):
    config = from_mapping(tiny_params(epochs=2))
    seen: list[int] = []

    def stop_at_step_7(history):
        seen.append(len(history))
        if history[-1][0] >= 7:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_on_cpu(
            config, tiny_images(), tmp_path / "c.pt", hooks=Hooks(on_history=stop_at_step_7)
        )
    assert seen == [1, 2, 3, 4]  # rows at steps 2, 4, 6, 8: the whole curve every time
    resumed: list[list[float]] = []
    hooks = Hooks(on_history=lambda history: resumed.append([row[0] for row in history]))
    train_on_cpu(config, tiny_images(), tmp_path / "c.pt", hooks=hooks)
    assert resumed[0] == [2.0, 4.0, 6.0]  # the checkpoint's (step 6) rows, before any new one
    assert resumed[1] == [2.0, 4.0, 6.0, 8.0]
