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
    tf32: bool = False  # scoring only: fp32 convolutions and matmuls in TF32 on a GPU

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _cpuinfo_value(key: str, cpuinfo: str) -> str | None:
    """The value of the first `key` line of /proc/cpuinfo (Linux); None where it can't be read."""
    try:
        with open(cpuinfo, encoding="utf-8") as lines:
            for line in lines:
                if line.startswith(key):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux); empty where they can't be read."""
    return set((_cpuinfo_value("flags", cpuinfo) or "").split())


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux), for benchmark output: speeds differ by CPU."""
    return _cpuinfo_value("model name", cpuinfo) or "unknown CPU"


def cpu_has_fast_bf16(flags: set[str] | None = None) -> bool:
    """True on CPUs with AMX, where bf16 matmuls and convolutions run ~4x fp32.

    AVX512-BF16 alone is not enough: measured on such a CPU without AMX (2-core Intel Xeon),
    bf16 autocast made DCGAN training 1.4x slower than fp32 and Inception 1.2x slower, and on
    an AMD EPYC it sped DCGAN up but slowed the MLP (benchmarks/train_speed.py). The rule for
    sampling and evaluation; training on a CPU times both (ganlab.training.precision_probe)."""
    flags = cpu_flags() if flags is None else flags
    return "amx_bf16" in flags and bool(torch.backends.mkldnn.is_available())


def resolve_precision(name: str, device: torch.device) -> Precision:
    """Turn params' `precision` (auto | bf16 | fp16 | fp32) into what this device can do.

    auto: bf16 on CUDA GPUs that support it and on CPUs with AMX, fp16 with
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
