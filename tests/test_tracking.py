from pathlib import Path

import mlflow
import pytest

from ganlab import tracking


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MLflow store in a temporary 'repository root'."""
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    return tmp_path


def test_default_store_is_sqlite_under_the_repo_root_with_absolute_artifacts(
    store: Path, monkeypatch
):
    monkeypatch.chdir(store.parent)  # queued experiments run elsewhere: paths must not follow cwd
    run_id = tracking.new_run({"lr": 0.1}, "a-run")
    assert tracking.tracking_uri() == f"sqlite:///{store / 'mlflow.db'}"
    run = mlflow.get_run(run_id)
    assert run.info.artifact_uri.startswith((store / "mlartifacts").as_uri())
    assert run.data.params == {"lr": "0.1"}
    assert run.info.run_name == "a-run"


def test_runs_carry_mlflows_own_git_commit_tag(store: Path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(store)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(store),
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=a",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    head = subprocess.run(
        ["git", "-C", str(store), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    tags = mlflow.get_run(tracking.new_run({"lr": 0.1}, "r")).data.tags
    assert tags["mlflow.source.git.commit"] == head and "git_commit" not in tags
    assert "mlflow.parentRunId" not in tags  # a training run is a top-level run


def test_run_is_named_after_the_dvc_experiment(store: Path, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "sunny-lark")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "abc123")
    run = mlflow.get_run(tracking.new_run({"lr": 0.1}, "fallback"))
    assert run.info.run_name == "sunny-lark"
    assert run.data.tags["dvc_exp_baseline_rev"] == "abc123"


def test_open_run_logs_and_closes_with_the_right_status(store: Path):
    run_id = tracking.new_run({"lr": 0.1}, "r")
    with tracking.open_run(run_id):
        tracking.log_metrics({"fid": 12.5})
    assert mlflow.get_run(run_id).info.status == "FINISHED"
    assert mlflow.get_run(run_id).data.metrics["fid"] == 12.5
    with pytest.raises(ValueError), tracking.open_run(run_id):
        raise ValueError("boom")
    assert mlflow.get_run(run_id).info.status == "FAILED"
    with pytest.raises(KeyboardInterrupt), tracking.open_run(run_id):
        raise KeyboardInterrupt
    assert mlflow.get_run(run_id).info.status == "KILLED"


def test_changed_params_get_a_new_run_pointing_at_the_trained_one(store: Path):
    run_id = tracking.new_run({"lr": 0.1, "fid.n_fake": 100}, "r")
    assert tracking.run_for_params(run_id, {"lr": 0.1, "fid.n_fake": 100}, "x") == run_id
    forked = tracking.run_for_params(run_id, {"lr": 0.1, "fid.n_fake": 50}, "x")
    assert forked != run_id
    assert mlflow.get_run(forked).data.tags["mlflow.parentRunId"] == run_id  # nested in the UI


def test_unreachable_server_fails_fast_with_a_clear_message(store: Path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(tracking.TrackingError, match=r"http://127.0.0.1:9 is not usable"):
        tracking.connect()


def test_registered_models_are_found_by_mlflow_uri_alias_or_name(store: Path):
    client = mlflow.MlflowClient(tracking.tracking_uri())
    tracking.connect()
    client.create_registered_model("g")
    runs = [tracking.new_run({"lr": lr}, f"r{lr}") for lr in (0.1, 0.2)]
    for run_id in runs:
        client.create_model_version("g", f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias("g", "best", "1")
    assert tracking.model_run("models:/g/1") == runs[0]
    assert tracking.model_run("models:/g@best") == runs[0]
    assert tracking.model_run("g/2") == tracking.model_run("g") == runs[1]  # latest version
    with pytest.raises(tracking.TrackingError, match="models:/g/7"):
        tracking.model_run("models:/g/7")


def test_sigterm_ends_a_stages_mlflow_run_as_killed(store: Path):
    import os
    import signal
    import time

    from ganlab.stages import run_stage

    run_id = tracking.new_run({"lr": 0.1}, "r")

    def main() -> None:
        with tracking.open_run(run_id):
            os.kill(os.getpid(), signal.SIGTERM)  # as `dvc exp` or a scheduler stops a stage
            time.sleep(10)

    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            run_stage(main)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert mlflow.get_run(run_id).info.status == "KILLED"


def test_a_sample_grid_is_an_mlflow_image_the_chart_view_shows_by_run(store: Path, tmp_path):
    """Not only an artifact: an image with a key and a step, which MLflow's image-grid chart
    puts beside other runs' (a plain log_artifact would not show there)."""
    from PIL import Image

    grid = tmp_path / "samples.png"
    Image.new("L", (8, 8), 128).save(grid)
    run_id = tracking.new_run({"lr": 0.1}, "r")
    with tracking.open_run(run_id):
        tracking.log_image(grid, "samples", step=1200)
    images = [a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "images")]
    assert any(path.startswith("images/samples+step+1200+") for path in images), images
