"""A temporary git + DVC copy of the project with tiny params, for the end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.conftest import REPO, tiny_params

FASHION = Path("/usr/share/datasets/fashion-mnist")
END_TO_END = [  # each module's pytestmark
    pytest.mark.slow,
    pytest.mark.skipif(
        not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
    ),
]


def run(args: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def project_copy(root: Path, params: dict) -> tuple[Path, dict]:
    """A git + DVC copy of the project at `root` with these params, and an environment to run it."""
    root.mkdir()
    for name in ("dvc.yaml", ".gitignore", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(
        REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = "1"  # tiny runs last seconds
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "test"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "test@example.org"
    run(["git", "init", "-q"], root, env)
    run(["dvc", "init", "-q"], root, env)
    run(["dvc", "config", "core.analytics", "false"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "tiny ganlab"], root, env)
    return root, env


def tiny_project_params(**train) -> dict:
    """params.yaml with the tiny sizes of conftest.tiny_params (and these train keys)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    tiny = tiny_params(precision="auto", train=train)
    # params.yaml's widths and z: the workspace goes from DCGAN to the MLP and translators, where
    # tiny ones would be params without effect (refused)
    kept = ("train", "fid", "render", "classifier", "ngf", "ndf", "z_dim")
    params.update({k: v for k, v in tiny.items() if k not in kept})
    for section in ("train", "fid", "render", "classifier"):
        params[section].update(tiny[section])
    return params


def tiny_repo(folder: Path) -> tuple[Path, dict]:
    """The project with tiny params (training scored every 8 steps, FID every 16) in
    `folder`/repo, and an environment to run it in."""
    params = tiny_project_params(
        subset=256,
        log_every=2,
        checkpoint_every=4,
        eval_every=8,
        eval_samples=32,
        fid_every=16,
        fid_samples=20,
    )
    return project_copy(folder / "repo", params)


def runs(root: Path) -> list:
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("ganlab")
    return mlflow.search_runs(
        [experiment.experiment_id], output_format="list", order_by=["start_time ASC"]
    )
