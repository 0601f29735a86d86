"""Device and numeric precision: CUDA when present, bf16 autocast where the hardware has it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    """How a forward pass runs: the autocast dtype (None = fp32) and whether to scale gradients."""

    name: str
    dtype: torch.dtype | None
    grad_scaling: bool = False

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX or AVX512-BF16, where oneDNN runs bf16 matmuls natively."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(name: str, device: torch.device) -> Precision:
    """Turn params' `precision` (auto | bf16 | fp16 | fp32) into what this device can do.

    auto: bf16 on CUDA GPUs that support it and on CPUs with native bf16, fp16 with
    gradient scaling on older GPUs, fp32 otherwise. fp32 is the exact, slow reference.
    """
    if name == "auto":
        if device.type == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            name = "bf16" if cpu_has_fast_bf16() else "fp32"
    if name == "fp32":
        return Precision("fp32", None)
    if name == "bf16":
        return Precision("bf16", torch.bfloat16)
    if device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return Precision("fp16", torch.float16, grad_scaling=True)
