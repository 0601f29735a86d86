"""`precision: auto` for training on a CPU, chosen by timing training steps in fp32 and bf16.

What bf16 autocast buys on a CPU depends on the chip and on the model. On a 2-core AMD EPYC
without AMX, the default DCGAN (width 32) trained 1.30x faster in bf16 (3,086 against 2,367
images/s over the same 14,055 steps) and the MLP 10% slower; on an Intel Xeon without AMX,
bf16 made DCGAN 1.4x slower. So auto times a few cycles of the run's own training step
(networks, optimizers, EMA, batch handling) in each precision and takes bf16 only when it is
clearly faster. The choice is cached by CPU, torch version, threads and training params, so
the same params on the same machine always train in the same precision, and the probe runs
once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from ganlab.config import Config
from ganlab.device import Precision, cpu_model, resolve_precision
from ganlab.io import write_json
from ganlab.models import ModelSpec
from ganlab.training import distributed
from ganlab.training.gan import GANStep, build_nets
from ganlab.training.runner import Progress

BF16_MARGIN = 1.2  # bf16 must be this much faster, so that timing noise can't flip a near tie
WARMUP, REPEATS = 2, 5  # untimed cycles, then timed ones (the fastest counts)
FP32, BF16 = Precision("fp32", None), Precision("bf16", torch.bfloat16)
# bf16 wins only below fp32 / BF16_MARGIN a cycle; one cycle (warm-up included) over GIVE_UP
# times that, and over GIVE_UP_FLOOR_S (room for first-call kernel set-up), ends its timing: on
# CPUs with no bf16 hardware (AVX2 only) bf16 runs 10-20x slower, and a 64x64 DCGAN's seven
# cycles took minutes.
GIVE_UP, GIVE_UP_FLOOR_S = 4.0, 1.0


def cache_path() -> Path:
    """Where probed choices are kept: $GANLAB_CACHE, else the user's cache folder."""
    if "GANLAB_CACHE" in os.environ:
        return Path(os.environ["GANLAB_CACHE"]) / "precision.json"
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "ganlab" / "precision.json"


def probe_key(config: Config, spec: ModelSpec) -> str:
    """What decides the timing: the machine, torch, threads and what shapes training (the
    networks, batch, losses, optimizers: the resume fingerprint)."""
    what = {
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "training": config.training_fingerprint(),
        "spec": dataclasses.asdict(spec),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def seconds_per_cycle(
    config: Config, spec: ModelSpec, precision: Precision, give_up_after: float = math.inf
) -> float:
    """The fastest of REPEATS timed training cycles (n_critic D steps and G's turn) of this
    run's own step: its networks, optimizers, EMA and batch handling, on random images; or the
    first cycle that took longer than give_up_after seconds."""
    device = torch.device("cpu")
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, compile=False))
    steps = config.n_critic * (WARMUP + REPEATS)
    draw = torch.Generator().manual_seed(0)
    shape = (config.batch_size * steps, *spec.image_shape)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=draw)
    labels = None
    if spec.n_classes:
        labels = torch.randint(spec.n_classes, (len(images),), generator=draw)
    world = distributed.World()
    nets = build_nets(config, spec, device, precision, world)
    step = GANStep(
        nets, config, images, labels, spec, device=device, precision=precision, world=world
    )
    progress = Progress(sums=torch.zeros(len(step.columns)))
    order = torch.arange(len(images))
    times = []
    for cycle in range(WARMUP + REPEATS):
        started = time.perf_counter()
        for index in range(cycle * config.n_critic, (cycle + 1) * config.n_critic):
            step.update(progress, index, order)
            progress.step += 1
        times.append(time.perf_counter() - started)
        if times[-1] > give_up_after:
            return times[-1]
    return min(times[WARMUP:])


def measure(config: Config, spec: ModelSpec) -> dict[str, Any]:
    """Milliseconds per training cycle in each precision on fresh networks, and the faster one.

    The probe's networks are its own and the global RNG is put back: training is the same
    with or without it."""
    with torch.random.fork_rng(devices=[]):
        fp32 = seconds_per_cycle(config, spec, FP32)
        give_up = max(GIVE_UP * fp32 / BF16_MARGIN, GIVE_UP_FLOOR_S)
        bf16 = seconds_per_cycle(config, spec, BF16, give_up_after=give_up)
    faster = fp32 / bf16 >= BF16_MARGIN
    return {
        "precision": "bf16" if faster else "fp32",
        "fp32_ms": 1000 * fp32,
        "bf16_ms": 1000 * bf16,
        "bf16_cut_short": bf16 > give_up,  # one cycle, far too slow to win: not timed further
    }


def read_cache(path: Path) -> dict[str, Any]:
    """The probed choices so far; an unreadable cache is measured again, not trusted."""
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def training_precision(
    config: Config, spec: ModelSpec, device: torch.device, processes: int = 1
) -> tuple[Precision, dict[str, Any] | None]:
    """The precision a noise-to-image model trains in, and the probe's timings when auto was
    decided by one: only for one process on a CPU (GPUs and DDP keep resolve_precision's rule)."""
    if config.precision != "auto" or device.type != "cpu" or processes > 1:
        return resolve_precision(config.precision, device), None
    path, key = cache_path(), probe_key(config, spec)
    cache = read_cache(path)
    if key not in cache:
        cache[key] = measure(config, spec)
        write_json(path, cache)
    probe = cache[key]
    return resolve_precision(probe["precision"], device), probe
