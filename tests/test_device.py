"""precision: auto picks bf16 on the CPU only where it pays (AMX), from the CPU's flags."""

from __future__ import annotations

from pathlib import Path

import torch

from ganlab import device


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert {"avx512_bf16", "amx_bf16"} <= device.cpu_flags(str(cpuinfo))
    assert device.cpu_flags(str(tmp_path / "missing")) == set()


def test_auto_precision_is_bf16_with_amx_and_fp32_with_avx512_bf16_alone(monkeypatch):
    cpu = torch.device("cpu")
    amx = {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    monkeypatch.setattr(device, "cpu_flags", lambda: amx)
    assert device.resolve_precision("auto", cpu).name == "bf16"
    monkeypatch.setattr(device, "cpu_flags", lambda: amx - {"amx_bf16", "amx_tile"})
    assert device.resolve_precision("auto", cpu).name == "fp32"  # slower in bf16: measured
    assert device.resolve_precision("bf16", cpu).name == "bf16"  # asked for explicitly
