"""What the pipeline benchmarks share: run a preset as a `dvc exp run`, then put the
workspace back as committed (params.yaml, dvc.lock, metrics and the outputs)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from ganlab.presets import flat_overrides, yaml_value

REPO = Path(__file__).resolve().parents[1]


def preset_params(preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """params.yaml, then the preset (unless "none"), then the overrides, as `dvc exp run -S`
    would set them (dotted keys set sections): for benchmarks that train in-process."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    settings = flat_overrides(preset) if preset != "none" else {}
    for key, value in {**settings, **overrides}.items():
        section, _, inner = key.rpartition(".")
        (params[section] if section else params)[inner] = value
    return params


def run_preset(repo: Path, preset: str, name: str, overrides: dict[str, Any]) -> bool:
    """One `dvc exp run -n name` of a preset with these `-S` overrides; False if it failed."""
    settings = {**flat_overrides(preset), **overrides}
    sets = [arg for k, v in settings.items() for arg in ("-S", f"{k}={yaml_value(v)}")]
    # `dvc exp run -S` edits the workspace's params.yaml, which keeps the last experiment's
    # values: start every run from the committed params, or it inherits the previous one's.
    restore_from_head(repo, ["params.yaml"])
    result = subprocess.run(["dvc", "exp", "run", "-n", name, *sets], cwd=repo)
    return result.returncode == 0


def restore_from_head(repo: Path, paths: list[str]) -> None:
    """Write the committed bytes of these files back (git checkout trusts stale index stats
    after DVC rewrote a file in place, so it is not used here)."""
    listed = subprocess.run(
        ["git", "ls-files", "--", *paths], cwd=repo, capture_output=True, text=True, check=True
    )
    for name in listed.stdout.split():
        committed = subprocess.run(
            ["git", "show", f"HEAD:{name}"], cwd=repo, capture_output=True, check=True
        )
        (repo / name).write_bytes(committed.stdout)


def restore_workspace(repo: Path) -> None:
    """The workspace as committed: params, lock file, metrics, then the outputs it names."""
    restore_from_head(repo, ["params.yaml", "dvc.lock", "metrics", "reports"])
    subprocess.run(["dvc", "checkout", "--force", "--quiet"], cwd=repo, check=False)
