"""benchmarks/ddp_one_process.py: one process under torchrun trains through DDP, as a plain one."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import ddp_one_process  # benchmarks/ is a folder of scripts, not a package


def test_one_torchrun_process_trains_through_ddp_and_matches_the_plain_run(
    tiny_root: Path, capsys, monkeypatch
):
    """Both runs are fresh processes on Fashion-MNIST-format files; on the CPU the torchrun
    one joins a gloo group, trains G and D through DDP, and every loss is the plain run's."""
    (tiny_root / "TinyMNIST").rename(tiny_root / "FashionMNIST")
    argv = ["ddp_one_process.py", "--preset", "none", "--steps", "3", "--data", str(tiny_root)]
    monkeypatch.setattr(sys, "argv", argv)
    ddp_one_process.main()
    rows = capsys.readouterr().out.strip().splitlines()[-2:]
    plain = "params.yaml, one process on cpu | None | DCGANDiscriminator, DCGANGenerator | 3 |"
    assert rows[0].startswith(plain)
    ddp = "params.yaml, torchrun --nproc_per_node 1 on cpu | gloo | DistributedDataParallel | 3 |"
    assert rows[1].startswith(ddp)
    assert rows[1].endswith("| identical")


def test_the_losses_are_compared_step_for_step():
    plain = {"history": [[1.0, 2.0], [3.0, float("nan")]]}  # a critic's accuracy is NaN
    assert ddp_one_process.compare(plain, plain) == "identical"
    other = {"history": [[1.0, 2.5], [3.0, float("nan")]]}
    assert ddp_one_process.compare(plain, other) == "max |difference| 0.5"
    assert ddp_one_process.compare(plain, {"history": [[1.0, 2.0]]}).startswith("different")
