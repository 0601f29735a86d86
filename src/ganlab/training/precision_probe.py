"""`precision: auto` for training on a CPU, chosen by timing G and D in fp32 and in bf16.

What bf16 autocast buys on a CPU depends on the chip and on the model. Measured on a 2-core
AMD EPYC without AMX: DCGAN at width 64 trained 1.8x faster in bf16, at width 32 1.06x, and
the MLP 10% slower; on an Intel Xeon without AMX, bf16 made DCGAN 1.4x slower. So auto times a
few G and D steps of this run's networks in each precision and takes bf16 only when it is
clearly faster. The choice is cached by CPU, torch version, threads, batch and network shapes,
so the same params on the same machine always train in the same precision, and the probe
runs once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from ganlab.device import Precision, cpu_model, resolve_precision
from ganlab.io import write_json
from ganlab.models import ModelSpec, build_models, memory_format_for
from ganlab.models.conditional import discriminate, forward_generator

BF16_MARGIN = 1.2  # bf16 must be this much faster, so that timing noise can't flip a near tie
WARMUP, REPEATS = 2, 5  # untimed steps, then timed ones (the fastest counts)
CANDIDATES = (Precision("fp32", None), Precision("bf16", torch.bfloat16))


def cache_path() -> Path:
    """Where probed choices are kept: $GANLAB_CACHE, else the user's cache folder."""
    if "GANLAB_CACHE" in os.environ:
        return Path(os.environ["GANLAB_CACHE"]) / "precision.json"
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "ganlab" / "precision.json"


def probe_key(model: str, spec: ModelSpec, batch_size: int) -> str:
    """What decides the timing: the machine, torch, threads and the networks' shapes."""
    what = {
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": model,
        "spec": dataclasses.asdict(spec),
        "batch_size": batch_size,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def seconds_per_step(
    netG: torch.nn.Module, netD: torch.nn.Module, spec: ModelSpec, batch_size: int, precision
) -> float:
    """The fastest of REPEATS G forward + D forward/backward steps on a fixed random batch."""
    device = torch.device("cpu")
    draw = torch.Generator().manual_seed(0)
    z = torch.randn(batch_size, spec.z_dim, generator=draw)
    real = torch.rand(batch_size, *spec.image_shape, generator=draw) * 2 - 1
    labels = None
    if spec.n_classes:
        labels = torch.randint(spec.n_classes, (batch_size,), generator=draw)
    times = []
    for _ in range(WARMUP + REPEATS):
        started = time.perf_counter()
        with precision.autocast(device):
            fake = forward_generator(netG, z, labels)
            real_scores, _ = discriminate(netD, real, labels)
            fake_scores, _ = discriminate(netD, fake, labels)
        (real_scores.float().mean() - fake_scores.float().mean()).backward()
        times.append(time.perf_counter() - started)
    return min(times[WARMUP:])


def measure(model: str, spec: ModelSpec, batch_size: int, init: str) -> dict[str, Any]:
    """Milliseconds per step in each precision on fresh networks, and the faster one.

    The probe's networks are its own and the global RNG is put back: training is the same
    with or without it."""
    with torch.random.fork_rng(devices=[]):
        netG, netD = build_models(model, spec, init)
        for net in (netG, netD):  # laid out as training lays them out
            net.train().to(memory_format=memory_format_for(netD))
        ms = {p.name: 1000 * seconds_per_step(netG, netD, spec, batch_size, p) for p in CANDIDATES}
    faster = ms["fp32"] / ms["bf16"] >= BF16_MARGIN
    return {"precision": "bf16" if faster else "fp32", "fp32_ms": ms["fp32"], "bf16_ms": ms["bf16"]}


def read_cache(path: Path) -> dict[str, Any]:
    """The probed choices so far; an unreadable cache is measured again, not trusted."""
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def training_precision(
    config, spec: ModelSpec, device: torch.device, processes: int = 1
) -> tuple[Precision, dict[str, Any] | None]:
    """The precision a noise-to-image model trains in, and the probe's timings when auto was
    decided by one: only for one process on a CPU (GPUs and DDP keep resolve_precision's rule)."""
    if config.precision != "auto" or device.type != "cpu" or processes > 1:
        return resolve_precision(config.precision, device), None
    path, key = cache_path(), probe_key(config.model, spec, config.batch_size)
    cache = read_cache(path)
    if key not in cache:
        cache[key] = measure(config.model, spec, config.batch_size, config.init)
        write_json(path, cache)
    probe = cache[key]
    return resolve_precision(probe["precision"], device), probe
