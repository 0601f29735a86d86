"""Stage entry points: expected failures end with one clear line and exit code 2."""

import json
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
import yaml

from ganlab.config import with_overrides
from ganlab.data import datasets
from ganlab.stages import check_params, download, run_stage
from ganlab.tracking import read_run_id
from ganlab.training import semi_supervised
from tests.conftest import tiny_params
from tests.test_config import BAD_PARAMS


@pytest.mark.parametrize(("params", "named"), BAD_PARAMS)
def test_a_stage_given_bad_params_exits_2_with_one_line_and_no_traceback(
    params, named, tmp_path: Path, monkeypatch, capsys
):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(with_overrides({}, params)))  # dotted keys nested
    out = tmp_path / "data"
    argv = ["check_params", "--params", str(params_file), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        run_stage(check_params.main)
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


def run_train(
    params: dict, tiny_root: Path, tmp_path: Path, monkeypatch, extra=(), exit_code: int | None = 2
) -> dict:
    """The train stage's main on tiny data with these params, expected to stop with
    `exit_code` (None: to succeed); its output paths."""
    from ganlab.stages import train

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    names = (
        "generator",
        "best-generator",
        "mlflow-run",
        "progress",
        "history",
        "metrics",
        "info",
        "quality",
        "fid-history",
        "snapshots",
        "discriminator",
    )
    outputs = {name: tmp_path / name for name in names}
    argv = ["train", "--params", str(params_file), "--data", str(tiny_root), *extra]
    argv += [arg for name, path in outputs.items() for arg in (f"--{name}", str(path))]
    monkeypatch.setattr(sys, "argv", [*argv, "--checkpoint", str(tmp_path / "train.pt")])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    if exit_code is None:
        run_stage(train.main)
        return outputs
    with pytest.raises(SystemExit) as exit_info:
        run_stage(train.main)
    assert exit_info.value.code == exit_code
    return outputs


def test_the_semi_supervised_stage_reports_accuracies_epoch_means_and_snapshots(
    tiny_root: Path, tmp_path: Path, monkeypatch
):
    params = {
        **tiny_params(dataset="tiny", batch_size=8, epochs=2, feature_matching=True),
        "semi_supervised": {"labels_per_class": 1},
        "train": {"eval_every": None, "log_every": 2, "snapshot_epochs": True},
    }
    outputs = run_train(params, tiny_root, tmp_path, monkeypatch, exit_code=None)
    metrics = json.loads(outputs["metrics"].read_text())
    # what it ran on, in the info file as in the MLflow run's tags (a CPU here: fp32 or bf16)
    info = json.loads(outputs["info"].read_text())
    tags = mlflow.get_run(read_run_id(outputs["mlflow-run"])).data.tags
    assert info["device"] == tags["device"] == "cpu"
    assert info["precision"] == tags["precision"] in ("fp32", "bf16")
    assert info["train_seconds"] > 0 and "device" not in metrics  # metrics: numbers only
    # G and D after each epoch, moved from beside the resume checkpoint into the outputs
    assert sorted(path.name for path in outputs["snapshots"].iterdir()) == [
        "epoch_001.pt",
        "epoch_002.pt",
    ]
    assert metrics["snapshots"] == 2 and not list(tmp_path.glob("train_snapshots/*"))
    # the product, D, as a file: it scores what train.json says
    netD = semi_supervised.load_classifier(outputs["discriminator"], torch.device("cpu"))
    test_images, test_labels = datasets.load_images("tiny", tiny_root, train=False)
    accuracy = semi_supervised.test_accuracy(netD, test_images, test_labels, device="cpu")
    assert round(accuracy, 4) == metrics["test_accuracy"]
    assert metrics["labeled_images"] == 10  # one of each of the 10 classes
    for key in ("test_accuracy", "labeled_only_test_accuracy"):
        assert 0 <= metrics[key] <= 1
    history = pd.read_csv(outputs["history"])
    assert history["d_class_loss"].notna().all()
    # the per-epoch means the lessons plot, in MLflow by epoch
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = read_run_id(outputs["mlflow-run"])
    for name in ("d_loss", "d_real", "d_acc_real", "d_class_loss"):
        points = client.get_metric_history(run_id, f"epoch/{name}")
        assert [point.step for point in points] == [1, 2]
        by_epoch = history.groupby("epoch")[name].mean()
        assert [point.value for point in points] == pytest.approx(by_epoch.tolist())


def test_a_translation_domain_smaller_than_a_batch_stops_before_any_run(
    tiny_root: Path, tmp_path: Path, monkeypatch, capsys
):
    translation = {"source_class": "0", "target_class": "1"}
    params = {"dataset": "tiny", "model": "cyclegan", "batch_size": 64, "translation": translation}
    outputs = run_train(params, tiny_root, tmp_path, monkeypatch)
    stderr = capsys.readouterr().err
    assert "batch_size = 64" in stderr and "smaller domain" in stderr
    assert not (tmp_path / "mlflow.db").exists()  # no MLflow run was started
    assert not any(path.exists() for path in outputs.values())


def test_scoring_while_training_without_the_classifier_stops_before_any_run(
    tiny_root: Path, tmp_path: Path, monkeypatch, capsys
):
    params = {"dataset": "tiny", "batch_size": 8, "train": {"eval_every": 2}}
    missing = tmp_path / "classifier.pt"
    extra = ["--classifier", str(missing), "--stats", str(tmp_path / "stats.npz")]
    outputs = run_train(params, tiny_root, tmp_path, monkeypatch, extra)
    stderr = capsys.readouterr().err
    assert "expected --classifier to name an existing file" in stderr and str(missing) in stderr
    assert "train.eval_every = 2" in stderr
    assert not (tmp_path / "mlflow.db").exists()
    assert not any(path.exists() for path in outputs.values())
