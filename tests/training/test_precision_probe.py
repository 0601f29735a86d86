"""precision: auto on a CPU: timed, cached per machine and model, and harmless to training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ganlab.config import config_from_dict
from ganlab.training import precision_probe
from ganlab.training.gan import model_spec
from tests.conftest import tiny_params

CPU = torch.device("cpu")


def spec_of(config):
    return model_spec(config, (1, 28, 28), 10)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path))
    return tmp_path / "precision.json"


def timed(monkeypatch: pytest.MonkeyPatch, fp32_ms: float, bf16_ms: float) -> list[str]:
    """Step timings as given, in place of the clock; returns the precisions timed."""
    timed_names: list[str] = []

    def seconds(config, spec, precision, give_up_after=math.inf):
        timed_names.append(precision.name)
        return {"fp32": fp32_ms, "bf16": bf16_ms}[precision.name] / 1000

    monkeypatch.setattr(precision_probe, "seconds_per_cycle", seconds)
    return timed_names


@pytest.mark.parametrize(
    "fp32_ms, bf16_ms, chosen", [(20, 10, "bf16"), (20, 18, "fp32"), (9, 10, "fp32")]
)
def test_auto_takes_bf16_only_when_it_is_clearly_faster(
    cache, monkeypatch, fp32_ms, bf16_ms, chosen
):
    timed(monkeypatch, fp32_ms, bf16_ms)
    config = config_from_dict(tiny_params(precision="auto"))
    precision, probe = precision_probe.training_precision(config, spec_of(config), CPU)
    assert precision.name == chosen == probe["precision"]
    assert (probe["fp32_ms"], probe["bf16_ms"]) == (fp32_ms, bf16_ms)


def test_bf16_far_too_slow_to_win_is_not_timed_to_the_end(monkeypatch):
    """On CPUs with no bf16 hardware a bf16 cycle is 10-20x fp32's: one such cycle settles it."""
    config = config_from_dict(tiny_params(precision="auto"))
    updates: list[int] = []
    update = precision_probe.GANStep.update
    monkeypatch.setattr(
        precision_probe.GANStep, "update", lambda *a: updates.append(1) or update(*a)
    )
    precision_probe.seconds_per_cycle(config, spec_of(config), precision_probe.BF16, 0.0)
    assert len(updates) == config.n_critic  # one cycle, not WARMUP + REPEATS

    limits = {}

    def seconds(config, spec, precision, give_up_after=math.inf):
        limits[precision.name] = give_up_after
        return {"fp32": 0.5, "bf16": 9.0}[precision.name]

    monkeypatch.setattr(precision_probe, "seconds_per_cycle", seconds)
    result = precision_probe.measure(config, spec_of(config))
    assert limits == {"fp32": math.inf, "bf16": precision_probe.GIVE_UP * 0.5 / 1.2}
    assert result["precision"] == "fp32" and result["bf16_cut_short"]


def test_the_choice_is_cached_per_machine_and_training_params(cache, monkeypatch):
    timed_names = timed(monkeypatch, 20, 10)
    config = config_from_dict(tiny_params(precision="auto"))
    precision_probe.training_precision(config, spec_of(config), CPU)
    assert timed_names == ["fp32", "bf16"]
    timed(monkeypatch, 10, 20)  # a second probe would now pick fp32
    precision, _ = precision_probe.training_precision(config, spec_of(config), CPU)
    assert precision.name == "bf16"  # the same params on the same machine: the same precision
    wider = config_from_dict(tiny_params(precision="auto", ngf=16))
    assert precision_probe.training_precision(wider, spec_of(wider), CPU)[0].name == "fp32"
    assert len(json.loads(cache.read_text())) == 2


def test_an_unreadable_cache_is_measured_again(cache, monkeypatch):
    cache.write_text("{not json")
    timed(monkeypatch, 20, 10)
    config = config_from_dict(tiny_params(precision="auto"))
    assert precision_probe.training_precision(config, spec_of(config), CPU)[0].name == "bf16"
    assert len(json.loads(cache.read_text())) == 1


def test_explicit_precisions_and_data_parallel_runs_are_not_probed(cache, monkeypatch):
    timed_names = timed(monkeypatch, 20, 10)
    for params, processes in (
        (tiny_params(precision="fp32"), 1),
        (tiny_params(precision="auto"), 2),
    ):
        config = config_from_dict(params)
        precision, probe = precision_probe.training_precision(
            config, spec_of(config), CPU, processes
        )
        assert probe is None and precision.name == "fp32"
    assert timed_names == [] and not cache.exists()


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"conditional": "projection"},
        {"model": "mlp"},
        {"n_critic": 2, "loss": "wasserstein", "clip_value": 0.01},
    ],
)
def test_the_real_probe_times_both_and_leaves_the_random_state_alone(settings):
    config = config_from_dict(tiny_params(**settings))
    torch.manual_seed(7)
    before = torch.get_rng_state()
    result = precision_probe.measure(config, spec_of(config))
    assert torch.equal(torch.get_rng_state(), before)  # training draws what it would have
    assert result["fp32_ms"] > 0 and result["bf16_ms"] > 0
    assert result["precision"] in ("fp32", "bf16")
