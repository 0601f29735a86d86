"""`precision: auto` for training on a CPU, chosen by timing training steps in fp32 and bf16.

What bf16 autocast buys on a CPU depends on the chip and on the model. On a 2-core AMD EPYC
without AMX, the default DCGAN (width 32) trained 1.30x faster in bf16 (3,086 against 2,367
images/s over the same 14,055 steps) and the MLP 10% slower; on an Intel Xeon without AMX,
bf16 made DCGAN 1.4x slower. So auto times a few cycles of the run's own training step
(networks, optimizers, EMA, batch handling) in each precision, alternating, and takes bf16
only when it is clearly faster. The choice is cached by CPU (model name and vector flags),
torch version, threads, training params and the step's code, so the same params on the same
machine always train in the same precision, and the probe runs once per version of the code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ganlab.config import Config
from ganlab.device import Precision, cpu_flags, cpu_model, resolve_precision
from ganlab.io import write_json
from ganlab.models import ModelSpec
from ganlab.training import distributed
from ganlab.training.gan import GANStep, build_nets
from ganlab.training.runner import PACKAGE, Progress, code_digest

BF16_MARGIN = 1.2  # bf16 must be this much faster, so that timing noise can't flip a near tie
WARMUP, REPEATS = 2, 5  # untimed cycles, then timed ones (the fastest counts)
FP32, BF16 = Precision("fp32", None), Precision("bf16", torch.bfloat16)
# bf16 wins only below fp32 / BF16_MARGIN a cycle; one bf16 cycle (warm-up included) over
# GIVE_UP times that (fp32's fastest so far), and over GIVE_UP_FLOOR_S (room for first-call
# kernel set-up), ends its timing: on CPUs with no bf16 hardware (AVX2 only) bf16 runs 10-20x
# slower, and a 64x64 DCGAN's seven cycles took minutes.
GIVE_UP, GIVE_UP_FLOOR_S = 4.0, 1.0
# Even one full-batch bf16 cycle can cost minutes there (a 64x64 DCGAN: 325 and 700 s a cycle
# against fp32's 4.2 and 6.0 on a Zen 2 EPYC), so bf16 is first tried on a cycle of
# SCOUT_BATCH images: over SCOUT_GIVE_UP times fp32's scout cycle and over GIVE_UP_FLOOR_S, it
# is not timed at full batch. Measured there at 2 images: 25x and 49x for those two models,
# 5x for the default 28x28 DCGAN (whose bf16 cycles stay under the floor), 1.2x for the MLP.
SCOUT_BATCH, SCOUT_GIVE_UP = 2, 12.0


def cache_path() -> Path:
    """Where probed choices are kept: $GANLAB_CACHE, else the user's cache folder."""
    if "GANLAB_CACHE" in os.environ:
        return Path(os.environ["GANLAB_CACHE"]) / "precision.json"
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "ganlab" / "precision.json"


def step_code_digest(package: Path = PACKAGE) -> str:
    """A digest of the code a training step runs (ganlab.models and ganlab.training): a
    rewritten layer changes what each precision costs, so it gets a probe of its own."""
    return code_digest(("models", "training"), package)


def probe_key(config: Config, spec: ModelSpec) -> str:
    """What decides the timing: the machine, torch, threads, the step's code and what shapes
    training (the networks, batch, losses, optimizers: the resume fingerprint). The machine is
    its model name and its vector-unit flags: "AMD EPYC" names chips with and without AVX-512
    BF16."""
    what = {
        "code": step_code_digest(),
        "cpu": cpu_model(),
        "cpu_flags": sorted(flag for flag in cpu_flags() if flag.startswith(("avx", "amx"))),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "training": config.training_fingerprint(),
        "spec": dataclasses.asdict(spec),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def cycle_timer(config: Config, spec: ModelSpec, precision: Precision) -> Callable[[], float]:
    """A function that runs one more training cycle (n_critic D steps and G's turn) of this
    run's own step in this precision, on random images, and returns the seconds it took."""
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

    def one_cycle() -> float:
        started = time.perf_counter()
        for _ in range(config.n_critic):
            step.update(progress, progress.step % steps, order)
            progress.step += 1
        return time.perf_counter() - started

    return one_cycle


def scout(config: Config, spec: ModelSpec) -> dict[str, Any]:
    """A first look at bf16 on cycles of SCOUT_BATCH images: fp32 (warm-up), bf16, fp32 again.
    bf16 is hopeless when its cycle takes over SCOUT_GIVE_UP times the slower fp32 one (so load
    from another process during either fp32 cycle can't flag it) and over GIVE_UP_FLOOR_S."""
    small = dataclasses.replace(config, batch_size=SCOUT_BATCH)
    fp32, bf16 = cycle_timer(small, spec, FP32), cycle_timer(small, spec, BF16)
    fp32()  # warm-up
    before, bf16_s, after = fp32(), bf16(), fp32()
    fp32_s = max(before, after)
    return {
        "scout_fp32_ms": 1000 * fp32_s,
        "scout_bf16_ms": 1000 * bf16_s,
        "hopeless": bf16_s > max(SCOUT_GIVE_UP * fp32_s, GIVE_UP_FLOOR_S),
    }


def measure(config: Config, spec: ModelSpec) -> dict[str, Any]:
    """Milliseconds per training cycle in each precision on fresh networks, and the faster one.

    The two precisions' cycles alternate, so that load from other processes (`dvc queue
    start -j 2`, a second run) falls on both alike: timed one after the other, fp32 was once
    measured at 904 ms a cycle while a queued neighbour ran and bf16 at 41 ms after it ended,
    on a CPU where fp32 takes 8 ms and bf16 14. The fastest cycle after the warm-up counts.
    A scout on tiny batches goes first, so that a bf16 hopeless on this CPU costs seconds.
    The probe's networks are its own and the global RNG is put back: training is the same
    with or without it."""
    with torch.random.fork_rng(devices=[]):
        first_look = scout(config, spec)
        timers = {p.name: cycle_timer(config, spec, p) for p in (FP32, BF16)}
        times: dict[str, list[float]] = {FP32.name: [], BF16.name: []}
        cut_short = first_look.pop("hopeless")  # then bf16 gets no full-batch cycle
        for _ in range(WARMUP + REPEATS):
            times[FP32.name].append(timers[FP32.name]())
            if not cut_short:
                times[BF16.name].append(timers[BF16.name]())
                give_up = max(GIVE_UP * min(times[FP32.name]) / BF16_MARGIN, GIVE_UP_FLOOR_S)
                cut_short = times[BF16.name][-1] > give_up
    fp32, bf16_times = min(times[FP32.name][WARMUP:]), times[BF16.name]
    bf16 = (bf16_times[-1] if cut_short else min(bf16_times[WARMUP:])) if bf16_times else None
    faster = bf16 is not None and fp32 / bf16 >= BF16_MARGIN
    return {
        "precision": "bf16" if faster else "fp32",
        "fp32_ms": 1000 * fp32,
        "bf16_ms": None if bf16 is None else 1000 * bf16,
        "bf16_cut_short": cut_short,  # one cycle or the scout's, far too slow to win
        **first_look,
    }


def probe_summary(probe: dict[str, Any]) -> str:
    """What the probe timed, for the train stage's log."""
    if probe["bf16_ms"] is None:
        bf16 = (
            f"bf16 not timed at full batch: {probe['scout_bf16_ms']:.0f} ms a cycle of "
            f"{SCOUT_BATCH} images against fp32's {probe['scout_fp32_ms']:.0f}"
        )
    else:
        bf16 = f"{probe['bf16_ms']:.1f} in bf16"
    return f"{probe['fp32_ms']:.1f} ms a cycle in fp32, {bf16}; cached in {cache_path()}"


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
