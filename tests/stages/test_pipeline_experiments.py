"""Experiments on the pipeline end to end, each a `dvc exp run` (or a queue of them) in one
temporary copy of the repository with tiny params: conditional and translation models, two
training processes, bad params, a killed and resumed training, queued experiments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from ganlab.config import TrainSection
from tests.stages.project import END_TO_END, run, runs, tiny_repo

pytestmark = END_TO_END


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    return tiny_repo(tmp_path_factory.mktemp("ganlab"))


def test_conditional_experiment_renders_a_class_grid_and_samples_a_class(repo, tmp_path: Path):
    root, env = repo
    acgan = ["-n", "acgan", "-S", "classes.conditional=acgan", "-S", "epochs=1"]
    run(["dvc", "exp", "run", *acgan], root, env)
    grid = root / "reports/figures/class_grid.png"

    assert Image.open(grid).size == (4 * 30 + 2, 10 * 30 + 2)  # 10 classes x render.nrow (4)
    latest = runs(root)[-1]
    assert latest.info.run_name == "acgan" and latest.data.params["classes.conditional"] == "acgan"
    assert "render/class_grid.png" in {
        a.path for a in mlflow.MlflowClient().list_artifacts(latest.info.run_id, "render")
    }
    out = tmp_path / "sevens.png"
    source = ["--checkpoint", "models/generator.pt"]
    run(["ganlab", "sample", *source, "--class", "7", "-n", "8", "--out", str(out)], root, env)
    assert out.stat().st_size > 0
    name = "ganlab-fashion_mnist-dcgan"  # the version this run registered: the newest
    newest = max(
        int(v.version) for v in mlflow.MlflowClient().search_model_versions(f"name='{name}'")
    )
    model = mlflow.pytorch.load_model(f"models:/{name}/{newest}")
    z_and_class = torch.cat([torch.randn(2, 100), torch.eye(10)[[7, 7]]], dim=1)
    assert model(z_and_class).shape == (2, 1, 28, 28)


def test_translation_experiments_run_the_whole_pipeline_into_mlflow(repo, tmp_path: Path):
    root, env = repo
    settings = ["-S", "classes.conditional=none", "-S", "epochs=1"]  # the workspace keeps acgan's
    run(["dvc", "exp", "run", "-n", "cyclegan", "-S", "model=cyclegan", *settings], root, env)
    evaluation = json.loads((root / "metrics/eval.json").read_text())
    info = json.loads((root / "reports/eval_info.json").read_text())
    assert info["domains"] == ["Sneaker", "Ankle boot"]
    assert evaluation["fid"] > 0 and evaluation["n_fake"] == 32 and evaluation["n_real"] == 32
    assert 0 < evaluation["cycle_l1"] < 1 and "target_l1" not in evaluation
    assert 0 <= evaluation["target_class_share"] <= 1
    # render.nrow (4) test inputs, each a row of input | translation | reconstruction
    assert Image.open(root / "reports/figures/translations.png").size == (3 * 30 + 2, 4 * 30 + 2)
    cyclegan = runs(root)[-1]
    assert cyclegan.info.run_name == "cyclegan" and cyclegan.info.status == "FINISHED"
    assert {"fid", "cycle_l1", "target_class_share", "recon_l1", "identity_l1"} <= set(
        cyclegan.data.metrics
    )
    assert cyclegan.data.tags["translation"] == "Sneaker -> Ankle boot"
    rendered = mlflow.MlflowClient().list_artifacts(cyclegan.info.run_id, "render")
    assert "render/translations.png" in {a.path for a in rendered}
    top = mlflow.MlflowClient().list_artifacts(cyclegan.info.run_id)
    assert "translations.png" in {a.path for a in top}  # the run comparison previews it

    run(["dvc", "exp", "run", "-n", "pix2pix", "-S", "model=pix2pix"], root, env)
    evaluation = json.loads((root / "metrics/eval.json").read_text())
    info = json.loads((root / "reports/eval_info.json").read_text())
    assert info["domains"] == ["edges", "fashion_mnist"] and 0 < evaluation["target_l1"] < 1
    # input | translation | target
    assert Image.open(root / "reports/figures/translations.png").size == (3 * 30 + 2, 4 * 30 + 2)
    pix2pix = runs(root)[-1]
    assert pix2pix.info.run_name == "pix2pix" and pix2pix.data.metrics["target_l1"] > 0
    translator = mlflow.pytorch.load_model("models:/ganlab-fashion_mnist-pix2pix/1")
    assert translator(torch.zeros(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    sample = ["ganlab", "sample", "--checkpoint", "models/generator.pt", "--out", "x.png"]
    refused = run(sample, root, env, check=False)
    assert refused.returncode == 2 and "pix2pix translation model" in refused.stderr


def test_train_stage_relaunches_itself_under_torchrun_for_nproc_2(repo):
    root, env = repo
    settings = ["-S", "train.nproc=2", "-S", "model=mlp", "-S", "epochs=1"]
    settings += [
        "-S",
        "classes.conditional=none",
    ]  # the workspace keeps the last experiment's values
    run(["dvc", "exp", "run", "-n", "two-procs", *settings], root, env)
    metrics = json.loads((root / "metrics/train.json").read_text())
    assert metrics["steps"] == 256 // (2 * 16)  # each step: 2 processes x batch_size 16
    assert metrics["images_seen"] == 256
    latest = runs(root)[-1]  # one MLflow run, from rank 0 only
    assert latest.info.run_name == "two-procs" and latest.data.tags["processes"] == "2"
    assert latest.info.status == "FINISHED" and latest.data.metrics["fid"] > 0


def test_bad_params_fail_before_any_work_naming_the_key(repo):
    root, env = repo
    result = run(["dvc", "exp", "run", "-S", "lr=-1"], root, env, check=False)
    assert result.returncode != 0
    assert (
        "params.yaml: lr = -1.0 is not allowed: expected a number > 0"
        in result.stdout + result.stderr
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_killed_training_resumes_from_its_checkpoint(repo):
    root, env = repo
    params = yaml.safe_load((root / "params.yaml").read_text())
    # `exp run -S` leaves its values in the workspace (and a failed one may too)
    epochs = 20  # 320 steps: the kill lands near step 4, the first checkpoint
    params.update(epochs=epochs, seed=7, lr=0.0002, model="dcgan")
    params["classes"]["conditional"] = "none"
    # classifier FID every 8 steps, no Inception FID (its sample count back at the default: a
    # param without effect is refused)
    params["train"].update(nproc=1, fid_every=None, fid_samples=TrainSection().fid_samples)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    checkpoint = root / "checkpoints/train.pt"
    process = subprocess.Popen(
        ["dvc", "repro", "train"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None and checkpoint.exists(), "train ended or wrote no checkpoint"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    interrupted_run = torch.load(checkpoint, weights_only=True)["run_id"]
    before = {r.info.run_id for r in runs(root)}
    # the curve so far was written as training went (a row every 2 steps, a checkpoint every 4)
    streamed = pd.read_csv(root / "metrics/train_history.csv")
    assert len(streamed) >= 2 and streamed["step"].tolist()[:2] == [2, 4]
    result = run(["dvc", "repro", "train"], root, env)
    assert "resuming from checkpoints/train.pt at step" in result.stdout
    metrics = json.loads((root / "metrics/train.json").read_text())
    assert metrics["resumed_from_step"] > 0
    assert metrics["steps"] == epochs * (256 // 16)
    # the resumed training logged into the interrupted run: no second run, one unbroken curve
    assert (
        json.loads((root / "models/train_run.json").read_text())["mlflow_run_id"] == interrupted_run
    )
    assert {r.info.run_id for r in runs(root)} == before
    losses = mlflow.MlflowClient().get_metric_history(interrupted_run, "d_loss")
    assert sorted({m.step for m in losses}) == list(range(2, epochs * 16 + 1, 2))
    resumed = torch.load(root / "models/generator.pt", weights_only=True)["state_dict"]
    resumed_best = (root / "models/generator_best.pt").read_bytes()
    resumed_quality = (root / "metrics/train_quality.csv").read_bytes()
    resumed_history = (root / "metrics/train_history.csv").read_bytes()
    # every eighth step scored once: no gap, no repeat
    steps = pd.read_csv(root / "metrics/train_quality.csv")["step"].tolist()
    assert steps == list(range(8, epochs * 16 + 1, 8))

    run(["dvc", "repro", "--force", "--single-item", "train"], root, env)  # uninterrupted
    assert json.loads((root / "metrics/train.json").read_text())["resumed_from_step"] == 0
    whole = torch.load(root / "models/generator.pt", weights_only=True)["state_dict"]
    assert resumed.keys() == whole.keys()
    assert all(torch.equal(resumed[key], whole[key]) for key in whole)  # bit-identical
    # the best generator, the scores that chose it and the losses, byte for byte
    assert (root / "models/generator_best.pt").read_bytes() == resumed_best
    assert (root / "metrics/train_quality.csv").read_bytes() == resumed_quality
    assert (root / "metrics/train_history.csv").read_bytes() == resumed_history


def test_queued_experiments_land_in_one_mlflow_store_each_under_its_name(repo):
    root, env = repo
    before = {r.info.run_id for r in runs(root)}
    lrs = ["0.0001", "0.0007"]  # two workers run both at once
    for lr in lrs:
        settings = ["-S", f"lr={lr}", "-S", "epochs=1", "-S", "classes.conditional=none"]
        run(["dvc", "exp", "run", "--queue", "-n", f"queued-{lr}", *settings], root, env)
    run(["dvc", "queue", "start", "-j", "2"], root, env)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], root, env).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    assert status.count("Success") >= len(lrs), status
    new = {r.info.run_name: r for r in runs(root) if r.info.run_id not in before}
    assert set(new) == {f"queued-{lr}" for lr in lrs}  # one run each, none lost or merged
    for lr in lrs:
        queued = new[f"queued-{lr}"]
        assert queued.info.status == "FINISHED" and queued.data.params["lr"] == lr
        assert queued.data.metrics["fid"] > 0  # evaluate logged into the run train opened
    assert not list(root.glob(".dvc/tmp/exps/**/mlflow.db"))  # nothing went to a temp copy
