"""The real pipeline end to end: `dvc repro`, then `dvc exp run`, what users see of them (MLflow,
the CLI, `dvc plots`, a DVC remote), and each lesson's line on its own dataset, in temporary
copies of the repository with tiny params."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from ganlab.config import flatten
from ganlab.data.datasets import DATASETS
from ganlab.presets import LESSONS, exp_run_line, flat_overrides
from ganlab.training.params import from_mapping
from tests.conftest import REPO
from tests.stages.project import END_TO_END, project_copy, run, runs, tiny_project_params, tiny_repo
from tests.test_presets import write_real_format

ARTIFACTS = REPO / "test-artifacts"  # screenshots kept for people to look at
pytestmark = END_TO_END


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    return tiny_repo(tmp_path_factory.mktemp("ganlab"))


@pytest.fixture(scope="module")
def two_runs(repo) -> dict:
    """`dvc repro` on the tiny params, then `dvc exp run -S lr=0.0005 -n faster-lr`: what
    the tests of the CLI and the MLflow pages need, whichever of them runs first."""
    root, env = repo
    run(["dvc", "repro"], root, env)
    after_repro = {
        name: json.loads((root / name).read_text())
        for name in (
            "metrics/eval.json",
            "metrics/train.json",
            "reports/fid_stats_info.json",
            "reports/classifier_info.json",
            "reports/train_info.json",
            "reports/eval_info.json",
            "reports/render_info.json",
        )
    }
    tables = {
        name: pd.read_csv(root / name)
        for name in ("metrics/train_quality.csv", "metrics/train_fid.csv")
    }
    best_step = torch.load(root / "models/generator_best.pt", weights_only=True)["step"]
    experiment = run(["dvc", "exp", "run", "-S", "lr=0.0005", "-n", "faster-lr"], root, env)
    return {
        "root": root,
        "env": env,
        "after_repro": after_repro,
        "tables": tables,
        "best_step": best_step,
        "experiment": experiment,
    }


def test_dvc_repro_then_exp_run_make_two_comparable_mlflow_runs(two_runs):
    root = two_runs["root"]
    evaluation = two_runs["after_repro"]["metrics/eval.json"]
    assert next(iter(evaluation)) == "fid"  # dvc exp show lists FID first
    for name, values in two_runs["after_repro"].items():  # DVC and MLflow read numbers only
        if name.startswith("metrics/"):
            assert all(isinstance(v, int | float) for v in values.values()), (name, values)
            # durations are no metrics: `dvc exp show` leads with the scores
            assert not [key for key in values if "second" in key], (name, values)
    assert two_runs["after_repro"]["reports/train_info.json"]["train_seconds"] > 0
    for stage in ("fid_stats", "classifier", "train", "eval", "render"):  # where each ran
        assert two_runs["after_repro"][f"reports/{stage}_info.json"]["device"] == "cpu", stage
    assert evaluation["fid"] > 0 and evaluation["n_fake"] == 32 and evaluation["n_real"] == 32
    info = two_runs["after_repro"]["reports/eval_info.json"]
    assert info["feature_dims"] == 2048 and info["feature_extractor"].startswith("pytorch-fid")
    # offline, the Inception weights have no classifier: IS is absent and the reason recorded
    assert "inception_score" not in evaluation
    assert "no classifier" in info["inception_score_unavailable"]
    assert 0 <= evaluation["inception_precision"] <= 1 and 0 <= evaluation["inception_recall"] <= 1
    assert evaluation["classifier_n_real"] == 10000  # the Fashion-MNIST test split
    assert 1 <= evaluation["classes_covered"] <= 10
    domain_classifier = two_runs["after_repro"]["reports/classifier_info.json"]
    assert domain_classifier["test_accuracy"] > 0.5 and domain_classifier["train_images"] == 4000
    pictures = (
        "samples.png",
        "progress.png",
        "progress.gif",
        "losses.png",
        "d_outputs.png",
        "epoch_losses.png",
        "d_accuracy.png",
    )
    for name in (*pictures, "quality.png", "fid_over_time.png"):
        assert (root / "reports/figures" / name).stat().st_size > 0
    history = (root / "metrics/train_history.csv").read_text().splitlines()
    assert history[0] == (
        "step,epoch,d_loss,g_loss,d_real,d_fake_d_step,d_fake_g_step,d_acc_real,d_acc_fake"
    )
    assert not (root / "checkpoints/train.pt").exists()  # removed once training completed
    # scored while it trained: classifier FID every 8 steps, Inception FID every 16 and at the end
    quality = two_runs["tables"]["metrics/train_quality.csv"]
    assert quality.columns.tolist() == ["step", "epoch", "classifier_fid"]  # no timing
    assert quality["step"].tolist() == [8, 16, 24, 32] and quality["epoch"].tolist() == [1, 1, 2, 2]
    assert quality["classifier_fid"].notna().all()
    minutes = json.loads((root / "reports/train_info.json").read_text())["eval_minutes"]
    by_step = [minutes[str(step)] for step in (8, 16, 24, 32)]  # JSON sorts the keys as text
    assert len(minutes) == 4 and by_step == sorted(by_step)
    fid_curve = two_runs["tables"]["metrics/train_fid.csv"]
    assert fid_curve["step"].tolist() == [16, 32] and (fid_curve["fid"] > 0).all()
    trained = two_runs["after_repro"]["metrics/train.json"]
    best_row = quality.loc[quality["classifier_fid"].idxmin()]
    assert trained["best_step"] == best_row["step"]
    assert trained["best_classifier_fid"] == pytest.approx(best_row["classifier_fid"], abs=1e-4)
    # evaluate scored the best generator (params: evaluate.checkpoint: best) and says so
    assert evaluation["checkpoint_step"] == trained["best_step"]
    assert info["checkpoint"] == "best"
    assert two_runs["best_step"] == trained["best_step"]  # models/generator_best.pt's step

    first = runs(root)[0]
    assert first.data.metrics["fid"] == pytest.approx(evaluation["fid"])
    curve = mlflow.MlflowClient().get_metric_history(first.info.run_id, "eval/classifier_fid")
    assert sorted(m.step for m in curve) == [8, 16, 24, 32]
    fid_points = mlflow.MlflowClient().get_metric_history(first.info.run_id, "eval/fid")
    assert sorted(m.step for m in fid_points) == [16, 32]
    [dataset] = [i.dataset for i in first.inputs.dataset_inputs]
    assert dataset.name == "fashion_mnist" and len(dataset.digest) == 16
    assert dataset.source_type == "http" and "fashion" in dataset.source.lower()
    assert any(name.startswith("system/cpu_utilization") for name in first.data.metrics)
    version = mlflow.MlflowClient().get_model_version("ganlab-fashion_mnist-dcgan", "1")
    assert version.run_id == first.info.run_id  # the registry links to the run
    assert float(version.tags["fid"]) == pytest.approx(evaluation["fid"])  # and shows its FID
    assert {
        "kid",
        "inception_precision",
        "inception_recall",
        "classifier_fid",
        "classes_covered",
    } <= set(first.data.metrics)
    assert first.data.params["lr"] == "0.0002"
    assert {"d_loss", "g_loss", "d_real", "d_fake_d_step", "d_acc_real", "d_acc_fake"} <= set(
        first.data.metrics
    )
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(first.info.run_id, "render")}
    assert "render/samples.png" in artifacts and "render/progress.gif" in artifacts
    # the grid at the top level too: MLflow's run comparison previews top-level files only
    top = {a.path for a in mlflow.MlflowClient().list_artifacts(first.info.run_id)}
    assert "samples.png" in top
    # one stored copy of the generator: the registered model, not also a file beside it
    assert not mlflow.MlflowClient().list_artifacts(first.info.run_id, "model")
    logged = mlflow.search_logged_models(
        experiment_ids=[first.info.experiment_id],
        filter_string=f"source_run_id = '{first.info.run_id}'",
        output_format="list",
    )
    assert [model.name for model in logged] == ["generator"]

    result = two_runs["experiment"]
    assert "Stage 'download' didn't change, skipping" in result.stdout
    assert "Stage 'fid_stats' didn't change, skipping" in result.stdout
    assert "Stage 'classifier' didn't change, skipping" in result.stdout
    first_again, second = runs(root)[:2]
    assert first_again.info.run_id == first.info.run_id
    assert second.info.run_name == "faster-lr"
    assert second.data.params["lr"] == "0.0005"
    assert second.data.tags["dvc_exp_baseline_rev"]
    assert second.data.metrics["fid"] != first.data.metrics["fid"]
    assert second.info.status == "FINISHED"


def test_cli_uses_the_runs_the_pipeline_made(two_runs, tmp_path: Path):
    root, env = two_runs["root"], two_runs["env"]
    board = run(["ganlab", "leaderboard", "--csv", str(tmp_path / "board.csv")], root, env)
    table = pd.read_csv(tmp_path / "board.csv")
    assert "faster-lr" in set(table["run"]) and len(table) == 2
    assert table["fid"].is_monotonic_increasing
    assert "faster-lr" in board.stdout

    best = table["run_id"][0]
    run(
        ["ganlab", "sample", "--run", best, "-n", "16", "--out", str(tmp_path / "run.png")],
        root,
        env,
    )
    model = "ganlab-fashion_mnist-dcgan"
    run(
        [
            "ganlab",
            "sample",
            "--model",
            f"models:/{model}/2",
            "-n",
            "16",
            "--out",
            str(tmp_path / "v2.png"),
        ],
        root,
        env,
    )
    run(
        [
            "ganlab",
            "interpolate",
            "--checkpoint",
            "models/generator.pt",
            "--out",
            str(tmp_path / "w.png"),
            "--gif",
            str(tmp_path / "w.gif"),
        ],
        root,
        env,
    )
    # version 2 is the best generator the latest run (the experiment) trained, as in models/
    run(
        [
            "ganlab",
            "sample",
            "--checkpoint",
            "models/generator_best.pt",
            "-n",
            "16",
            "--out",
            str(tmp_path / "file.png"),
        ],
        root,
        env,
    )
    assert (tmp_path / "v2.png").read_bytes() == (tmp_path / "file.png").read_bytes()
    assert (tmp_path / "run.png").stat().st_size > 0 and (tmp_path / "w.gif").stat().st_size > 0


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package chromium)")
def test_mlflow_metric_page_compares_both_runs_by_fid(two_runs, tmp_path: Path):
    root, env = two_runs["root"], two_runs["env"]
    first, second = runs(root)[:2]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            "mlflow",
            "ui",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"mlflow ui answered no /health on {base} within 90 s")
        experiment = first.info.experiment_id
        ids = json.dumps([first.info.run_id, second.info.run_id])
        runs_query = urllib.parse.quote(ids)
        experiments_query = urllib.parse.quote(json.dumps([experiment]))
        # the metric page compares the runs by one metric (the compare-runs page renders only
        # its first rows of metrics, which FID may be below)
        fid_query = urllib.parse.quote(json.dumps(["fid"]))
        url = (
            f"{base}/#/metric?runs={runs_query}&metric=%22fid%22&experiments={experiments_query}"
            f"&plot_metric_keys={fid_query}"
        )
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=20000",
            "--window-size=1600,1200",
        ]
        dom = subprocess.run(
            [CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180
        ).stdout
        screenshot = ARTIFACTS / "mlflow_fid.png"
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot = subprocess.run(
            [CHROMIUM, *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=180
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert shot.returncode == 0, shot.stderr
    assert Image.open(screenshot).size == (1600, 1200)
    # the chart titled by the metric (an element whose text is exactly "fid"), not any word
    # containing "fid", and a legend naming both runs
    assert re.search(r">\s*fid\s*<", dom), "no fid chart on the metric page"
    assert first.info.run_name in dom and second.info.run_name in dom
    assert screenshot.stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package chromium)")
def test_dvc_plots_page_draws_every_curve_offline(two_runs, tmp_path: Path):
    """`dvc plots show` with the template scripts/offline_plots.sh builds (which install.sh
    runs): the page draws its vega plots with no network at all, not from a CDN."""
    root, env = two_runs["root"], two_runs["env"]
    template = REPO / ".dvc/offline-plots/index.html"
    assert template.is_file(), "run scripts/offline_plots.sh (scripts/install.sh does)"
    (root / ".dvc/offline-plots").mkdir(exist_ok=True)
    shutil.copy(template, root / ".dvc/offline-plots/index.html")
    run(["dvc", "config", "--local", "plots.html_template", "offline-plots/index.html"], root, env)
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], root, env)
    page = (tmp_path / "plots/index.html").read_text()
    assert "cdn.jsdelivr" not in page and "<script src=" not in page
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    offline = ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]  # no network
    dom = subprocess.run(
        [
            CHROMIUM,
            *flags,
            *offline,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            (tmp_path / "plots/index.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    drawn = len(re.findall(r'class="marks"', dom))  # one vega canvas or SVG per plot
    curves = [
        p for p in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"] if isinstance(p, dict)
    ]
    assert drawn == len(curves), f"{drawn} plots drawn, dvc.yaml defines {len(curves)} curves"
    for curve in curves:  # each drawn from its own spec (titles are drawn into the canvas)
        assert next(iter(curve.values()))["title"] in page


def _digests(root: Path, paths: list[str]) -> dict[str, str]:
    found = {}
    for name in paths:
        for path in sorted((root / name).rglob("*")) if (root / name).is_dir() else [root / name]:
            if path.is_file():
                found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_dvc_push_and_pull_round_trip_through_a_remote(two_runs, tmp_path: Path):
    root, env = two_runs["root"], two_runs["env"]
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--local", "--force", "--default", "team", str(remote)], root, env)
    tracked = ["data/raw", "data/fid_stats.npz", "data/classifier.pt", "models"]
    run(["dvc", "commit", "--force"], root, env)  # record the workspace's outputs in dvc.lock
    before = _digests(root, tracked)
    assert any(name.startswith("models/") for name in before)
    run(["dvc", "push"], root, env)
    assert any(remote.rglob("*")), "nothing was pushed"
    shutil.rmtree(root / ".dvc/cache")
    for name in tracked:
        target = root / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    run(["dvc", "pull"], root, env)
    assert _digests(root, tracked) == before


OFFLINE_LESSONS = sorted(name for name, p in LESSONS.items() if p["dataset"] != "fashion_mnist")
# short runs; fp32 spares each new 64x64 model the precision probe (~80 s here; two_runs has one)
LESSON_SIZES = ["-S", "train.eval_every=2", "-S", "train.fid_every=null", "-S", "precision=fp32"]


@pytest.fixture(scope="module")
def lessons_repo(tmp_path_factory) -> tuple[Path, dict]:
    """The project with tiny params where MNIST, SVHN and CelebA are a site's own copies: files
    in the published formats (256 training images each) in a local folder, their MD5s trusted,
    as a user whose institution keeps repacked datasets would set params.yaml."""
    folder = tmp_path_factory.mktemp("site-copies")
    for dataset in ("mnist", "svhn", "celeba"):
        write_real_format(dataset, folder, 256)
    params = tiny_project_params(subset=256, log_every=1, eval_samples=32)
    params["download"].update(
        local_dirs=[str(folder)],
        trusted_md5=sorted(hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()),
    )
    return project_copy(tmp_path_factory.mktemp("lessons") / "repo", params)


@pytest.mark.parametrize("name", OFFLINE_LESSONS)
def test_each_lesson_line_runs_the_whole_pipeline_on_its_dataset(name, lessons_repo):
    """The README's `dvc exp run` line of each lesson on MNIST, SVHN or CelebA, as printed,
    through download, fid_stats, classifier, train, evaluate and render (two G updates long)."""
    root, env = lessons_repo
    run(["git", "checkout", "params.yaml"], root, env)  # as the README says between presets
    steps = 2 * LESSONS[name].get("n_critic", 1)  # two G updates
    shorter = [*LESSON_SIZES, "-S", f"train.max_steps={steps}"]
    run([*shlex.split(exp_run_line(name)), *shorter], root, env)
    config = from_mapping(yaml.safe_load((root / "params.yaml").read_text()))
    shortened = {size.split("=")[0] for size in shorter[1::2]}
    for key, value in flat_overrides(name).items():  # the lesson's settings reached params.yaml
        if key not in shortened:
            assert flatten(config)[key] == (list(value) if isinstance(value, tuple) else value)
    assert json.loads((root / "metrics/train.json").read_text())["steps"] == steps
    evaluation = json.loads((root / "metrics/eval.json").read_text())
    assert evaluation["fid"] > 0 and evaluation["n_fake"] == 32
    side = config.image_size or DATASETS[config.dataset].image_shape[1]
    assert Image.open(root / "reports/figures/samples.png").size == (4 * (side + 2) + 2,) * 2
    latest = runs(root)[-1]
    assert latest.info.run_name == name.replace("_", "-") and latest.info.status == "FINISHED"
    assert latest.data.params["dataset"] == config.dataset and latest.data.metrics["fid"] > 0
