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


def test_a_translation_domain_smaller_than_a_batch_stops_before_any_run(
    tiny_root: Path, tmp_path: Path, monkeypatch, capsys
):
    from ganlab.stages import train

    params_file = tmp_path / "params.yaml"
    translation = {"source_class": "0", "target_class": "1"}
    params_file.write_text(
        yaml.safe_dump(
            {"dataset": "tiny", "model": "cyclegan", "batch_size": 64, "translation": translation}
        )
    )
    names = ("generator", "mlflow-run", "progress", "history", "metrics")
    outputs = {name: tmp_path / name for name in names}
    argv = ["train", "--params", str(params_file), "--data", str(tiny_root)]
    argv += [arg for name, path in outputs.items() for arg in (f"--{name}", str(path))]
    monkeypatch.setattr(sys, "argv", [*argv, "--checkpoint", str(tmp_path / "train.pt")])
    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    with pytest.raises(SystemExit) as exit_info:
        run_stage(train.main)
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert "batch_size = 64" in stderr and "smaller domain" in stderr
    assert not store.exists()  # no MLflow run was started
    assert not any(path.exists() for path in outputs.values())
