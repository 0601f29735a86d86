"""DDP on the CPU (gloo, 2 processes): the same steps as one process with twice the batch."""

import datetime
import itertools
import json
import os
import socket
import types
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ganlab.training import distributed, gan, runner
from ganlab.training.gan import GANStep, train
from ganlab.training.losses import LOSSES
from ganlab.training.params import from_mapping
from ganlab.training.runner import history_columns
from tests.conftest import FP32, tiny_images, tiny_params

# mlp: no BatchNorm, whose per-process statistics would differ from the whole batch's on a CPU
# (PyTorch's SyncBatchNorm runs on GPUs only); dropout 0: no per-process random masks.
PARAMS = dict(model="mlp", dropout=0.0, epochs=1, lr=1e-3, train={"log_every": 1})
STEPS = 4  # 64 images / (2 x 8) per step
CPU = torch.device("cpu")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _record_local_draws(draws: list) -> None:
    """Make every D update first draw 3 numbers, as dropout or DiffAugment would, and keep them."""
    d_step = gan.d_step

    def recording(*args, **kwargs):
        draws.append(torch.rand(3).tolist())
        return d_step(*args, **kwargs)

    gan.d_step = recording


def _rank(
    rank: int,
    world_size: int,
    port: int,
    out: str,
    params: dict,
    fast_clock: int | None = None,
    record_draws: bool = False,
) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    # a rank left waiting in a collective fails the test in seconds instead of hanging it
    timeout = datetime.timedelta(seconds=60)
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timeout)
    if rank == fast_clock:  # this rank's clock gains 20 s at every read
        readings = itertools.count()
        runner.time = types.SimpleNamespace(perf_counter=lambda: 20.0 * next(readings))
    draws: list = []
    if record_draws:
        _record_local_draws(draws)
    wrappers: list[str] = []  # what the training step calls G and D through
    wrap = distributed.wrap
    distributed.wrap = lambda *args: (
        wrappers.append(type(wrapped := wrap(*args)).__name__) or wrapped
    )
    try:
        config = from_mapping(tiny_params(**params))
        result = train(
            config,
            tiny_images(),
            torch.arange(64) % 10,
            device=torch.device("cpu"),
            precision=FP32,
            checkpoint_path=Path(out) / "ckpt.pt",
            run_id="ddp",
        )
        # parameters only: BatchNorm's running statistics are per process (rank 0's are saved)
        weights = {k: v.tolist() for k, v in result.netG.named_parameters()}
        Path(out, f"rank{rank}.json").write_text(
            json.dumps(
                {
                    "history": result.history,
                    "weights": weights,
                    "steps": result.steps,
                    "draws": draws,
                    "wrappers": wrappers,
                }
            )
        )
    finally:
        dist.destroy_process_group()


def run_ddp(
    tmp_path: Path,
    params: dict,
    world_size: int = 2,
    fast_clock: int | None = None,
    record_draws: bool = False,
) -> list[dict]:
    args = (world_size, free_port(), str(tmp_path), params, fast_clock, record_draws)
    mp.spawn(_rank, args=args, nprocs=world_size)
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world_size)]


def test_two_processes_of_batch_b_step_like_one_process_of_batch_2b(tmp_path: Path):
    rank0, rank1 = run_ddp(tmp_path, {**PARAMS, "batch_size": 8})
    single = train(
        from_mapping(tiny_params(**PARAMS, batch_size=16)),
        tiny_images(),
        device=torch.device("cpu"),
        precision=FP32,
        checkpoint_path=tmp_path / "single.pt",
        run_id="one",
    )
    assert rank0["steps"] == single.steps == STEPS
    # Loss rows are averaged over the ranks: the same numbers as one process's whole batch.
    ddp_history, single_history = torch.tensor(rank0["history"]), torch.tensor(single.history)
    assert ddp_history.shape == single_history.shape == (STEPS, len(history_columns(GANStep)))
    assert torch.allclose(ddp_history, single_history, rtol=1e-4, atol=1e-5)
    # DDP kept both replicas identical, and equal to the one-process weights.
    for name, values in rank0["weights"].items():
        assert torch.equal(torch.tensor(values), torch.tensor(rank1["weights"][name]))
        assert torch.allclose(
            torch.tensor(values), single.netG.state_dict()[name], rtol=1e-4, atol=1e-5
        )
    assert (tmp_path / "ckpt.pt").is_file()  # written by rank 0 only, once per epoch


def test_one_process_under_torchrun_runs_ddp_and_steps_exactly_as_without(tmp_path: Path):
    """`torchrun --nproc_per_node 1`, how one GPU checks the NCCL path: a process group of one
    trains G and D through DDP and its collectives, and changes no number."""
    params = dict(model="dcgan", epochs=1, batch_size=8, train={"log_every": 1})
    (rank0,) = run_ddp(tmp_path, params, world_size=1)
    single = train(
        from_mapping(tiny_params(**params)),
        tiny_images(),
        device=CPU,
        precision=FP32,
        checkpoint_path=tmp_path / "single.pt",
        run_id="one",
    )
    assert rank0["wrappers"] == ["DistributedDataParallel"] * 2
    assert torch.equal(torch.tensor(rank0["history"]), torch.tensor(single.history))
    for name, values in rank0["weights"].items():
        assert torch.equal(torch.tensor(values), single.netG.state_dict()[name]), name


@pytest.mark.parametrize(
    "params",
    [
        dict(model="dcgan", epochs=1, batch_size=8),  # BatchNorm per process
        dict(model="dcgan", epochs=1, batch_size=8, classes={"conditional": "acgan"}),
        dict(
            model="dcgan",
            epochs=1,
            batch_size=8,
            loss="wasserstein",
            regularize={"gp_weight": 10.0},
            d={"norm": "layer"},
            n_critic=2,
        ),
    ],
    ids=["dcgan", "acgan", "wgan-gp"],
)
def test_ddp_trains_the_other_families_with_finite_losses(params, tmp_path: Path):
    rank0, rank1 = run_ddp(tmp_path, params)
    history = torch.tensor(rank0["history"])
    if not LOSSES[params.get("loss", "bce")].probability:  # a critic has no accuracy: NaN
        history = history[:, :-2]
    assert len(history) and torch.isfinite(history).all()
    for name, values in rank0["weights"].items():
        assert torch.equal(torch.tensor(values), torch.tensor(rank1["weights"][name]))


@pytest.mark.parametrize(("fast_clock", "steps"), [(1, 3 * STEPS), (0, "fewer")])
def test_every_rank_stops_by_rank_0s_clock_under_train_max_minutes(fast_clock, steps, tmp_path):
    """One rank's clock runs far ahead (20 s a read, 1 minute allowed). Rank 0's decides for
    all: when rank 1's runs ahead, both train every planned step (by its own clock rank 1 would
    stop first and leave rank 0 waiting in DDP's all-reduce); when rank 0's does, both stop at
    the same early step, with the same weights."""
    params = {**PARAMS, "batch_size": 8, "epochs": 3, "optim.lr_decay": "linear"}
    params["train"] = {**PARAMS["train"], "max_minutes": 1}
    rank0, rank1 = run_ddp(tmp_path, params, fast_clock=fast_clock)
    assert rank0["steps"] == rank1["steps"]
    if steps == "fewer":
        assert 0 < rank0["steps"] < 3 * STEPS
    else:
        assert rank0["steps"] == steps
    assert rank0["history"] == rank1["history"]  # the lr column too: one decay by one clock
    for name, values in rank0["weights"].items():
        assert torch.equal(torch.tensor(values), torch.tensor(rank1["weights"][name]))


def test_world_shards_a_global_batch_into_contiguous_slices():
    batch = torch.arange(12)
    assert distributed.World(1, 3).shard(batch).tolist() == [4, 5, 6, 7]
    assert distributed.World().shard(batch).tolist() == list(range(12))


def test_each_rank_draws_its_own_noise_for_its_slice_and_shares_the_rest(tmp_path: Path):
    """What a rank draws inside its updates (dropout, DiffAugment, instance noise) differs
    between ranks; the shared draws (z, labels, data order) stay equal, so the replicas still
    step as one process of twice the batch (the test above) and stay identical."""
    params = {**PARAMS, "batch_size": 8, "dropout": 0.3, "regularize.instance_noise": 0.1}
    rank0, rank1 = run_ddp(tmp_path, params, record_draws=True)
    assert len(rank0["draws"]) == len(rank1["draws"]) == STEPS
    assert all(a != b for a, b in zip(rank0["draws"], rank1["draws"], strict=True))
    for name, values in rank0["weights"].items():
        assert torch.equal(torch.tensor(values), torch.tensor(rank1["weights"][name]))


def test_a_ranks_own_stream_neither_reads_nor_advances_the_shared_one():
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    streams = [distributed.LocalRandom(7, distributed.World(r, 2), CPU) for r in (0, 1)]
    local = []
    for stream in streams:
        with stream.active():
            local.append(torch.rand(4))
    assert not torch.equal(local[0], local[1])
    assert torch.equal(torch.rand(4), expected)  # the shared stream, as if untouched
    with streams[0].active():
        after = torch.rand(4)  # the stream continues where it stopped
    replay = distributed.LocalRandom(7, distributed.World(0, 2), CPU)
    with replay.active():
        torch.rand(4)
        assert torch.equal(torch.rand(4), after)
    one = distributed.LocalRandom(7, distributed.World(), CPU)  # one process: one stream
    torch.manual_seed(7)
    with one.active():
        assert torch.equal(torch.rand(4), expected)
    streams[0].load([streams[1].state, streams[0].state])  # a checkpoint's states, by rank
    with streams[0].active():
        from_checkpoint = torch.rand(4)
    with streams[1].active():
        assert torch.equal(torch.rand(4), from_checkpoint)
