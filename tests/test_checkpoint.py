import os
import pickle
from pathlib import Path

import pytest
import torch

from ganlab import checkpoint
from ganlab.io import atomic_path, write_json


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": RunsCode()}))
    with pytest.raises(pickle.UnpicklingError):
        checkpoint.load(path)


def test_checkpoint_round_trip_with_rng_states(tmp_path: Path):
    torch.manual_seed(3)
    state = checkpoint.rng_state()
    expected = torch.rand(3)
    path = tmp_path / "c.pt"
    checkpoint.save(path, {"rng": state, "w": torch.ones(2)})
    torch.manual_seed(99)
    checkpoint.set_rng_state(checkpoint.load(path)["rng"])
    assert torch.equal(torch.rand(3), expected)


def test_failed_write_leaves_the_old_file_intact_and_no_temp_files(tmp_path: Path):
    target = tmp_path / "metrics.json"
    write_json(target, {"fid": 1.0})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "fid": 1.0\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    assert target.stat().st_mode & 0o044 == 0o044  # readable by others, like any output


def test_the_same_state_gives_the_same_bytes_wherever_it_is_written(tmp_path: Path):
    state = {"w": torch.arange(6.0).view(2, 3), "name": "dcgan", "step": 7}
    checkpoint.save(tmp_path / "a.pt", state)
    checkpoint.save(tmp_path / "b" / "generator.pt", state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b" / "generator.pt").read_bytes()
