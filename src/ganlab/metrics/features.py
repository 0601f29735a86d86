"""Feature extraction, done once per image set: Inception pool3 (and logits), domain classifier.

Every metric reads these arrays; nothing else in the lab runs the networks for scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganlab.config import FidSection
from ganlab.device import Precision, resolve_precision
from ganlab.metrics import classifier, fid
from ganlab.metrics.inception import FIDInception, load_fid_inception
from ganlab.metrics.onnx_runtime import OnnxInception, load_onnx_inception

CPU = torch.device("cpu")


TF32 = Precision("tf32", None, tf32=True)


def inception_precision(settings: FidSection, device: torch.device) -> Precision:
    """How fid.precision runs on this device. fp32 is exact everywhere (IEEE fp32, TF32 off on
    GPUs). bf16, the fast mode, is bf16 autocast on CPUs and TF32 on GPUs: on an H200, bf16
    moved FID by 2.0% where TF32 moved it by 0.04% and ran faster (benchmarks/gpu_paths.py)."""
    if settings.precision == "bf16" and device.type == "cuda":
        return TF32
    return resolve_precision(settings.precision, device)


def uses_onnxruntime(settings: FidSection, device: torch.device) -> bool:
    """fid.runtime: auto runs the exact (fp32) network on ONNX Runtime on CPUs, where it is
    faster than PyTorch, and on PyTorch on GPUs and in the bf16 fast mode."""
    if settings.runtime == "auto":
        return device.type == "cpu" and settings.precision == "fp32"
    return settings.runtime == "onnxruntime"


def inception_network(settings: FidSection, device: torch.device) -> FIDInception | OnnxInception:
    """pytorch-fid's Inception for fid.runtime on the device; BatchNorm folded in the CPU fast
    mode (bf16) only."""
    if uses_onnxruntime(settings, device):
        return load_onnx_inception()
    return fid.prepare(
        load_fid_inception(),
        device,
        settings.channels_last,
        # bf16 on CPUs only: fp32 stays exact, and TF32 (bf16 on GPUs) was measured unfolded
        fold_batchnorm=inception_precision(settings, device).dtype == torch.bfloat16,
    )


def runtime_name(settings: FidSection, device: torch.device) -> str:
    """Which runtime runs the network (fid.runtime resolved), with its version, for provenance."""
    if uses_onnxruntime(settings, device):
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__} (CPU)"
    return f"torch {torch.__version__} ({device.type})"


def inception_features(
    images: torch.Tensor,
    network: FIDInception | OnnxInception,
    settings: FidSection,
    device: torch.device,
    desc: str = "inception",
) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 images -> pool3 features, and logits when the weights have the classifier."""
    onnx = isinstance(network, OnnxInception)
    device = CPU if onnx else device  # ONNX Runtime's CPU provider reads numpy arrays
    features, logits = fid.inception_outputs(
        images,
        network,
        batch_size=settings.batch_size,
        precision=inception_precision(settings, device),
        device=device,
        channels_last=settings.channels_last and not onnx,  # ONNX Runtime wants NCHW
        desc=desc,
    )
    return features, logits if network.has_classifier else None


def classifier_features(
    model: classifier.DomainClassifier, images: torch.Tensor, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images -> the domain classifier's features and logits, in fp32."""
    return classifier.outputs(model, images, device=device, precision=classifier.FP32)


@dataclass
class Features:
    """What the metrics read: features of generated images and of the real reference set.

    A field left None means its extractor was not run; metrics that need it are skipped."""

    fake_inception: np.ndarray | None = None
    fake_logits: np.ndarray | None = None  # Inception's classifier; None when it is absent
    real_inception: np.ndarray | None = None
    real_stats: tuple[np.ndarray, np.ndarray] | None = None  # (mu, sigma) of real_inception
    fake_classifier: np.ndarray | None = None
    fake_classifier_logits: np.ndarray | None = None
    real_classifier: np.ndarray | None = None
    real_labels: np.ndarray | None = None  # classes of the real set, for class coverage
    n_classes: int = 0
    wanted_classes: np.ndarray | None = None  # translations: the class each should have
    # translations, as uint8 images: what G made, F's way back (CycleGAN), the inputs, targets
    translated: torch.Tensor | None = None
    cycled: torch.Tensor | None = None
    source: torch.Tensor | None = None
    target: torch.Tensor | None = None  # paired data: the image each translation should be
