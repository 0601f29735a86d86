"""precision: auto on a CPU: timed, cached per machine and model, and harmless to training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ganlab import device
from ganlab.training import precision_probe
from ganlab.training.gan import model_spec
from ganlab.training.params import from_mapping
from tests.conftest import tiny_params

CPU = torch.device("cpu")


def spec_of(config):
    return model_spec(config, (1, 28, 28), 10)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path))
    return tmp_path / "precision.json"


def timed(
    monkeypatch: pytest.MonkeyPatch,
    fp32_ms: float,
    bf16_ms: float,
    busy_cycles: int = 0,
    scout_ms: tuple[float, float] | None = None,
) -> list[str]:
    """Training cycles that take these times in place of the clock, the first `busy_cycles`
    of the probe (in either precision) 100x longer, as while another process holds the
    cores; the scout's small cycles take `scout_ms` (fp32, bf16), by default a tenth of the
    full ones. Returns the precisions of the full-batch cycles run, in order."""
    cycles: list[str] = []
    fp32_scout, bf16_scout = scout_ms or (fp32_ms / 10, bf16_ms / 10)

    def timer(config, spec, precision):
        def one_cycle() -> float:
            if config.batch_size == precision_probe.SCOUT_BATCH:
                return {"fp32": fp32_scout, "bf16": bf16_scout}[precision.name] / 1000
            cycles.append(precision.name)
            busy = 100 if len(cycles) <= busy_cycles else 1
            return busy * {"fp32": fp32_ms, "bf16": bf16_ms}[precision.name] / 1000

        return one_cycle

    monkeypatch.setattr(precision_probe, "cycle_timer", timer)
    return cycles


@pytest.mark.parametrize(
    "fp32_ms, bf16_ms, chosen", [(20, 10, "bf16"), (20, 18, "fp32"), (9, 10, "fp32")]
)
def test_auto_takes_bf16_only_when_it_is_clearly_faster(
    cache, monkeypatch, fp32_ms, bf16_ms, chosen
):
    timed(monkeypatch, fp32_ms, bf16_ms)
    config = from_mapping(tiny_params(precision="auto"))
    precision, probe = precision_probe.training_precision(config, spec_of(config), CPU)
    assert precision.name == chosen == probe["precision"]
    assert (probe["fp32_ms"], probe["bf16_ms"]) == (fp32_ms, bf16_ms)


def test_bf16_far_too_slow_to_win_is_not_timed_to_the_end(monkeypatch):
    """On CPUs with no bf16 hardware a bf16 cycle is 10-20x fp32's: one such cycle settles it."""
    cycles = timed(monkeypatch, fp32_ms=500, bf16_ms=9000)
    config = from_mapping(tiny_params(precision="auto"))
    result = precision_probe.measure(config, spec_of(config))
    assert cycles.count("bf16") == 1  # not WARMUP + REPEATS
    assert cycles.count("fp32") == precision_probe.WARMUP + precision_probe.REPEATS
    assert result["precision"] == "fp32" and result["bf16_cut_short"]
    assert (result["fp32_ms"], result["bf16_ms"]) == (500, 9000)


def test_a_scout_on_tiny_batches_spares_a_hopeless_bf16_its_full_cycles(monkeypatch):
    """A 64x64 DCGAN on a CPU with AVX2 only: one full bf16 cycle took 700 s (fp32: 6 s); on
    2-image cycles bf16 took 20.9 s against fp32's 0.43 s, which settles it."""
    cycles = timed(monkeypatch, fp32_ms=6000, bf16_ms=700_000, scout_ms=(428, 20_900))
    config = from_mapping(tiny_params(precision="auto"))
    result = precision_probe.measure(config, spec_of(config))
    assert "bf16" not in cycles
    assert cycles.count("fp32") == precision_probe.WARMUP + precision_probe.REPEATS
    assert result["precision"] == "fp32" and result["bf16_ms"] is None
    assert (result["scout_fp32_ms"], result["scout_bf16_ms"]) == (428, 20_900)
    assert "not timed at full batch" in precision_probe.probe_summary(result)


@pytest.mark.parametrize(
    "scout_ms",
    [
        (1, 300),  # 300x slower, but under a second: kernel set-up can do that on any CPU
        (200, 2000),  # 10x slower on tiny batches can still win at full batch
    ],
)
def test_the_scout_leaves_cheap_or_unclear_cases_to_the_full_timing(monkeypatch, scout_ms):
    cycles = timed(monkeypatch, fp32_ms=20, bf16_ms=10, scout_ms=scout_ms)
    config = from_mapping(tiny_params(precision="auto"))
    result = precision_probe.measure(config, spec_of(config))
    assert result["precision"] == "bf16" and result["bf16_ms"] == 10
    assert cycles.count("bf16") == precision_probe.WARMUP + precision_probe.REPEATS


def test_load_from_another_process_falls_on_both_precisions_alike(monkeypatch):
    """A queued neighbour (`dvc queue start -j 2`) holding the cores for the probe's first
    cycles must not make fp32 look slow: the precisions' cycles alternate, the fastest counts."""
    cycles = timed(monkeypatch, fp32_ms=8, bf16_ms=14, busy_cycles=7)
    config = from_mapping(tiny_params(precision="auto"))
    result = precision_probe.measure(config, spec_of(config))
    assert result["precision"] == "fp32"
    assert (result["fp32_ms"], result["bf16_ms"]) == (8, 14)
    assert cycles[:4] == ["fp32", "bf16", "fp32", "bf16"]


def test_the_probe_key_tells_chips_of_one_name_apart_by_their_flags(monkeypatch):
    """ "AMD EPYC" names chips with AVX-512 BF16 and chips with AVX2 only: a choice timed on one
    must not be reused on the other (a home folder shared between machines)."""
    config = from_mapping(tiny_params(precision="auto"))
    keys = set()
    for flags in ({"avx2", "fma"}, {"avx2", "avx512f", "avx512_bf16"}):
        monkeypatch.setattr(precision_probe, "cpu_flags", lambda flags=flags: flags)
        monkeypatch.setattr(precision_probe, "cpu_model", lambda: "AMD EPYC")
        keys.add(precision_probe.probe_key(config, spec_of(config)))
    assert len(keys) == 2


def test_the_probe_key_changes_with_the_code_a_training_step_runs(tmp_path: Path, monkeypatch):
    """A rewritten layer changes what each precision costs: new code, a new probe."""
    package = tmp_path / "ganlab"
    shutil.copytree(precision_probe.PACKAGE / "models", package / "models")
    shutil.copytree(precision_probe.PACKAGE / "training", package / "training")
    before = precision_probe.step_code_digest(package)
    assert before == precision_probe.step_code_digest()  # the same files, the same digest
    layers = package / "models" / "layers.py"
    layers.write_text(layers.read_text() + "\n# a change\n")
    assert precision_probe.step_code_digest(package) != before
    config = from_mapping(tiny_params(precision="auto"))
    keys = set()
    for digest in ("a", "b"):
        monkeypatch.setattr(precision_probe, "step_code_digest", lambda digest=digest: digest)
        keys.add(precision_probe.probe_key(config, spec_of(config)))
    assert len(keys) == 2


def test_the_choice_is_cached_per_machine_and_training_params(cache, monkeypatch):
    timed_names = timed(monkeypatch, 20, 10)
    config = from_mapping(tiny_params(precision="auto"))
    precision_probe.training_precision(config, spec_of(config), CPU)
    assert set(timed_names) == {"fp32", "bf16"}
    timed(monkeypatch, 10, 20)  # a second probe would now pick fp32
    precision, _ = precision_probe.training_precision(config, spec_of(config), CPU)
    assert precision.name == "bf16"  # the same params on the same machine: the same precision
    wider = from_mapping(tiny_params(precision="auto", ngf=16))
    assert precision_probe.training_precision(wider, spec_of(wider), CPU)[0].name == "fp32"
    assert len(json.loads(cache.read_text())) == 2


def test_an_unreadable_cache_is_measured_again(cache, monkeypatch):
    cache.write_text("{not json")
    timed(monkeypatch, 20, 10)
    config = from_mapping(tiny_params(precision="auto"))
    assert precision_probe.training_precision(config, spec_of(config), CPU)[0].name == "bf16"
    assert len(json.loads(cache.read_text())) == 1


# What a CPU offers, set by each test rather than read from the machine the suite runs on.
CPUS = {
    "amx": ({"amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2"}, "bf16"),
    "avx512_bf16 without amx": ({"avx512_bf16", "avx512f", "avx2"}, "fp32"),
    "avx2 only": ({"avx2"}, "fp32"),
}


@pytest.mark.parametrize(("flags", "ddp_precision"), CPUS.values(), ids=CPUS)
def test_explicit_precisions_and_data_parallel_runs_are_not_probed(
    cache, monkeypatch, flags, ddp_precision
):
    """Under DDP, auto keeps resolve_precision's rule for the CPU: bf16 with AMX, else fp32."""
    monkeypatch.setattr(device, "cpu_flags", lambda: flags)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    timed_names = timed(monkeypatch, 20, 10)
    for params, processes, expected in (
        (tiny_params(precision="fp32"), 1, "fp32"),
        (tiny_params(precision="auto"), 2, ddp_precision),
    ):
        config = from_mapping(params)
        precision, probe = precision_probe.training_precision(
            config, spec_of(config), CPU, processes
        )
        assert probe is None and precision.name == expected
    assert timed_names == [] and not cache.exists()


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"classes.conditional": "projection"},
        {"model": "mlp"},
        {"n_critic": 2, "loss": "wasserstein", "regularize.clip_value": 0.01},
    ],
)
def test_the_real_probe_times_both_and_leaves_the_random_state_alone(settings):
    config = from_mapping(tiny_params(**settings))
    torch.manual_seed(7)
    before = torch.get_rng_state()
    result = precision_probe.measure(config, spec_of(config))
    assert torch.equal(torch.get_rng_state(), before)  # training draws what it would have
    assert result["fp32_ms"] > 0 and result["bf16_ms"] > 0
    assert result["precision"] in ("fp32", "bf16")
