"""The FID Inception on ONNX Runtime: the same numbers as PyTorch's, exported once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ganlab.config import FidSection
from ganlab.metrics import inception, onnx_runtime
from ganlab.metrics.features import inception_network, uses_onnxruntime
from ganlab.metrics.onnx_runtime import OnnxInception

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("settings", "device", "expected"),
    [
        (FidSection(), CPU, True),  # auto, fp32 on a CPU: ONNX Runtime
        (FidSection(), CUDA, False),  # auto on a GPU: PyTorch
        (FidSection(precision="bf16"), CPU, False),  # the bf16 fast mode is PyTorch's autocast
        (FidSection(runtime="torch"), CPU, False),
        (FidSection(runtime="onnxruntime"), CPU, True),
    ],
)
def test_auto_runs_the_exact_network_on_onnxruntime_on_cpus_only(settings, device, expected):
    assert uses_onnxruntime(settings, device) is expected


def test_an_export_is_named_by_the_weights_it_came_from(tmp_path: Path):
    weights = tmp_path / "pt_inception.pth"
    weights.write_bytes(b"one set of weights")
    first = onnx_runtime.onnx_path(weights)
    assert first.parent == tmp_path and first.suffix == ".onnx"
    assert onnx_runtime.onnx_path(weights) == first
    weights.write_bytes(b"rebuilt weights")
    assert onnx_runtime.onnx_path(weights) != first  # never a stale export


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(1, 28), (3, 32), (3, 64)])
def test_onnxruntime_gives_pytorchs_features_and_logits(shape):
    channels, side = shape
    images = torch.rand(4, channels, side, side, generator=torch.Generator().manual_seed(2))
    images = images.expand(-1, 3, -1, -1)  # as fid.inception_outputs feeds grey images
    torch_net = inception_network(FidSection(runtime="torch", channels_last=False), CPU)
    onnx_net = inception_network(FidSection(runtime="onnxruntime"), CPU)
    assert isinstance(onnx_net, OnnxInception)
    with torch.no_grad():
        expected = torch_net(images)
    for ours, theirs in zip(onnx_net(images), expected, strict=True):
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max().item() <= 1e-4 * theirs.abs().max().item()


@pytest.mark.slow
def test_the_export_is_made_once_and_reused():
    inception_network(FidSection(runtime="onnxruntime"), CPU)
    path = onnx_runtime.onnx_path(inception.weights_path())
    made = os.stat(path).st_mtime_ns
    inception_network(FidSection(runtime="onnxruntime"), CPU)
    assert os.stat(path).st_mtime_ns == made
    assert not list(path.parent.glob(".*.onnx"))  # no temp file left behind
