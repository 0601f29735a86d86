"""Stage entry points: expected failures end with one clear line and exit code 2."""

import sys
from pathlib import Path

import pytest
import yaml

from ganlab.stages import download, run_stage
from tests.test_config import BAD_PARAMS


@pytest.mark.parametrize(("params", "named"), BAD_PARAMS)
def test_a_stage_given_bad_params_exits_2_with_one_line_and_no_traceback(
    params, named, tmp_path: Path, monkeypatch, capsys
):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    out = tmp_path / "data"
    monkeypatch.setattr(sys, "argv", ["download", "--params", str(params_file), "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        run_stage(download.main)
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("ganlab: error: params.yaml")
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert all(part in stderr for part in named)
    assert not out.exists()  # nothing was started


def test_corrupt_data_stops_the_download_stage_with_the_file_named(
    tiny_mirror: Path, tmp_path: Path, monkeypatch, capsys
):
    (tiny_mirror / "t10k-images-idx3-ubyte.gz").write_bytes(b"\\x1f\\x8b garbage")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(
        yaml.safe_dump({"dataset": "tiny", "download": {"local_dirs": [str(tiny_mirror)]}})
    )
    monkeypatch.setattr(
        sys, "argv", ["download", "--params", str(params_file), "--out", str(tmp_path / "d")]
    )
    with pytest.raises(SystemExit) as exit_info:
        run_stage(download.main)
    assert exit_info.value.code == 2
    assert "t10k-images-idx3-ubyte.gz" in capsys.readouterr().err
