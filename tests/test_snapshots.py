"""G and D kept after every epoch, N steps or N minutes, and the pick of one to evaluate."""

import functools
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from ganlab import checkpoint, outputs, sampling, snapshots, tracking
from ganlab.config import ConfigError
from ganlab.training import runner
from ganlab.training.gan import history_columns_of
from ganlab.training.params import from_mapping
from ganlab.training.runner import Hooks
from tests.conftest import tiny_images, tiny_params, train_on_cpu

GENERATOR_INFO = {"model": "dcgan", "latent": "normal", "precision": "fp32"}


def snapshot_params(**overrides) -> dict:
    return tiny_params(epochs=3, train={"snapshot_epochs": True}, **overrides)


def train_with_snapshots(config, folder: Path, checkpoint_path: Path, **hooks):
    """Train on the tiny images, saving each snapshot into `folder` as the train stage does."""
    from dataclasses import asdict

    from ganlab.training.gan import model_spec

    info = GENERATOR_INFO | {"spec": asdict(model_spec(config, (1, 28, 28), 10))}
    save = functools.partial(
        snapshots.save, folder=folder, generator_info=info, columns=history_columns_of(config)
    )
    return train_on_cpu(
        config, tiny_images(), checkpoint_path, hooks=Hooks(on_snapshot=save, **hooks)
    )


def test_a_snapshot_after_every_epoch_holds_g_d_and_the_epochs_means(tmp_path: Path):
    config = from_mapping(snapshot_params())
    result = train_with_snapshots(config, tmp_path / "s", tmp_path / "c.pt")
    assert snapshots.kept_epochs(tmp_path / "s") == [1, 2, 3]
    last = checkpoint.load(tmp_path / "s" / "epoch_003.pt")
    assert last["step"] == result.steps == 12 and last["epoch"] == 3
    assert all(torch.equal(last["state_dict"][k], v) for k, v in result.netG.state_dict().items())
    assert set(last["netD"]) == set(result.netD.state_dict())
    rows = [row for row in result.history if row[1] == 3]  # the epoch column
    g_loss = history_columns_of(config).index("g_loss")
    mean = sum(row[g_loss] for row in rows) / len(rows)  # rows of 2 steps each
    assert last["epoch_means"]["g_loss"] == pytest.approx(mean)
    _, saved = sampling.load_generator(tmp_path / "s" / "epoch_003.pt", torch.device("cpu"))
    assert saved["epoch"] == 3  # a snapshot is a generator file


def test_snapshots_every_n_steps_are_named_by_step(tmp_path: Path):
    config = from_mapping(tiny_params(epochs=2, train={"snapshot_every": 3}))
    train_with_snapshots(config, tmp_path / "s", tmp_path / "c.pt")
    names = sorted(path.name for path in (tmp_path / "s").iterdir())
    assert names == ["step_0000003.pt", "step_0000006.pt"]  # 8 steps; no epoch snapshots


class TickingClock:
    """A perf_counter that moves 5 s each time it is read: minutes of training in no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 5.0
        return self.now


def test_snapshots_every_n_minutes_end_with_the_budgets_last_generator(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "time", TickingClock())
    budget = {"snapshot_minutes": 1, "max_minutes": 3}
    config = from_mapping(tiny_params(epochs=100, train=budget))
    result = train_with_snapshots(config, tmp_path / "s", tmp_path / "c.pt")
    paths = sorted((tmp_path / "s").iterdir())
    assert [path.name for path in paths] == [
        "minute_0001.00.pt",
        "minute_0002.00.pt",
        "minute_0003.00.pt",
    ]
    saved = [checkpoint.load(path) for path in paths]
    assert [s["minutes"] for s in saved] == [1, 2, 3]
    assert 0 < saved[0]["step"] < saved[1]["step"] < saved[2]["step"] == result.steps
    last = saved[2]["state_dict"]  # the 3-minute snapshot is the generator training ended with
    assert all(torch.equal(last[k], v) for k, v in result.netG.state_dict().items())


def test_lowest_g_loss_and_epoch_pick_the_right_snapshot(tmp_path: Path):
    folder = tmp_path / "s"
    for epoch, g_loss in ((1, 2.0), (2, 0.5), (3, 0.5), (4, 1.0)):
        checkpoint.save(
            folder / f"epoch_{epoch:03d}.pt", {"epoch": epoch, "epoch_means": {"g_loss": g_loss}}
        )
    checkpoint.save(folder / "step_0000100.pt", {"epoch_means": {"g_loss": 0.0}})  # not an epoch
    assert snapshots.choose(folder, "lowest_g_loss").name == "epoch_002.pt"  # first of a tie
    assert snapshots.choose(folder, "epoch", 4).name == "epoch_004.pt"
    with pytest.raises(snapshots.SnapshotError, match=r"evaluate\.epoch = 5.*\[1, 2, 3, 4\]"):
        snapshots.choose(folder, "epoch", 5)
    with pytest.raises(snapshots.SnapshotError, match="lowest_g_loss"):
        snapshots.choose(tmp_path / "empty", "lowest_g_loss")


def test_best_and_last_name_the_generator_files(tmp_path: Path):
    last, best = tmp_path / "generator.pt", tmp_path / "generator_best.pt"
    checkpoint.save(last, {"step": 9})
    assert snapshots.generator_path("last", None, last, best, tmp_path) == last
    with pytest.raises(snapshots.SnapshotError, match=r"generator_best\.pt is missing"):
        snapshots.generator_path("best", None, last, best, tmp_path)


def test_resumed_snapshots_are_byte_identical(tmp_path: Path):
    config = from_mapping(snapshot_params())
    train_with_snapshots(config, tmp_path / "whole", tmp_path / "a.pt")

    class Interrupt(Exception):
        pass

    def stop_in_epoch_2(row):
        if row["step"] >= 7:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_with_snapshots(config, tmp_path / "cut", tmp_path / "b.pt", on_log=stop_in_epoch_2)
    assert snapshots.kept_epochs(tmp_path / "cut") == [1]
    train_with_snapshots(config, tmp_path / "cut", tmp_path / "b.pt")
    for name in ("epoch_001.pt", "epoch_002.pt", "epoch_003.pt"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_publish_moves_the_staged_snapshots_into_a_clean_output_folder(tmp_path: Path):
    staging, out = tmp_path / "staging", tmp_path / "models" / "snapshots"
    checkpoint.save(staging / "epoch_001.pt", {"epoch": 1})
    checkpoint.save(out / "epoch_009.pt", {"epoch": 9})  # a previous run's
    moved = snapshots.publish(staging, out)
    assert [path.name for path in moved] == ["epoch_001.pt"]
    assert sorted(path.name for path in out.iterdir()) == ["epoch_001.pt"]
    assert snapshots.publish(tmp_path / "none", out) == [] and out.is_dir()


@pytest.mark.parametrize(
    "settings, named",
    [
        ({"evaluate": {"checkpoint": "lowest_g_loss"}}, "train.snapshot_epochs: true"),
        (
            {"evaluate": {"checkpoint": "epoch"}, "train": {"snapshot_epochs": True}},
            "evaluate.epoch = None",
        ),
        (
            {"evaluate": {"checkpoint": "epoch", "epoch": 9}, "train": {"snapshot_epochs": True}},
            "evaluate.epoch = 9 but training runs epochs = 2",
        ),
        ({"evaluate": {"epoch": 1}}, "evaluate.epoch = 1 with evaluate.checkpoint = 'best'"),
        (
            {"model": "cyclegan", "train": {"snapshot_epochs": True}},
            "train.snapshot_epochs / snapshot_every / snapshot_minutes",
        ),
        (
            {"model": "pix2pix", "train": {"snapshot_minutes": 5}},
            "train.snapshot_epochs / snapshot_every / snapshot_minutes = (False, None, 5",
        ),
    ],
)
def test_a_choice_without_its_snapshots_is_refused_before_training(settings, named):
    with pytest.raises(ConfigError) as error:
        from_mapping(tiny_params(**settings))
    assert named in str(error.value)


def test_per_epoch_means_weight_each_log_row_by_its_steps(monkeypatch):
    """A row of 20 steps and an epoch's closing row of 3: the mean is (20 a + 3 b) / 23, not
    (a + b) / 2, in the snapshots, the MLflow epoch metrics and the per-epoch curves alike."""
    nan = float("nan")
    rows = [[20, 1, 1.0, nan], [23, 1, 3.0, nan], [43, 2, 2.0, 5.0], [46, 2, 4.0, 1.0]]
    columns = ("step", "epoch", "g_loss", "d_acc_real")
    means = snapshots.per_epoch_means(pd.DataFrame(rows, columns=list(columns)))
    assert means["g_loss"].tolist() == pytest.approx([29 / 23, 52 / 23])
    assert math.isnan(means["d_acc_real"][0]) and means["d_acc_real"][1] == pytest.approx(103 / 23)
    assert snapshots.epoch_means(rows, columns, 2) == pytest.approx(
        {"g_loss": 52 / 23, "d_acc_real": 103 / 23}
    )
    logged = {}
    monkeypatch.setattr(tracking, "log_metrics", lambda values, step: logged.update({step: values}))
    outputs.log_epoch_means(pd.DataFrame(rows, columns=list(columns)))
    assert logged[1] == pytest.approx({"epoch/g_loss": 29 / 23})
