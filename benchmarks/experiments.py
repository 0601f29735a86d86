"""What the pipeline benchmarks share: run a preset as a `dvc exp run`, then put the
workspace back as committed (params.yaml, dvc.lock, metrics and the outputs)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ganlab import checkpoint, evaluation
from ganlab.config import with_overrides
from ganlab.evaluation import References
from ganlab.presets import flat_overrides, yaml_value
from ganlab.results import RESULTS

REPO = Path(__file__).resolve().parents[1]


def preset_params(preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """params.yaml, then the preset (unless "none"), then the overrides, as `dvc exp run -S`
    would set them (dotted keys set sections): for benchmarks that train in-process."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    settings = flat_overrides(preset) if preset != "none" else {}
    return with_overrides(params, {**settings, **overrides})


def run_preset(repo: Path, preset: str, name: str, overrides: dict[str, Any]) -> bool:
    """One `dvc exp run -n name` of a preset (or "none": params.yaml) with these `-S`
    overrides; False if it failed."""
    settings = {**(flat_overrides(preset) if preset != "none" else {}), **overrides}
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
    """The workspace as committed: params, lock file, metrics, then the outputs it names. Not
    reports/results/: the rows a benchmark records between its runs stay."""
    kept = f":(exclude){RESULTS}"
    restore_from_head(repo, ["params.yaml", "dvc.lock", "metrics", "reports", kept])
    subprocess.run(["dvc", "checkout", "--force", "--quiet"], cwd=repo, check=False)


def stage_inputs(repo: Path) -> References:
    """The reference files the evaluate stage reads, as dvc.yaml passes them."""
    return References(
        data=repo / "data/raw",
        stats=repo / "data/fid_stats.npz",
        features=repo / "data/fid_features.npy",
        stats_info=repo / "reports/fid_stats_info.json",
        classifier=repo / "data/classifier.pt",
    )


def score_snapshots(repo: Path) -> list[dict]:
    """Every minute snapshot of the experiment in the workspace, scored as evaluate scores
    (the one evaluate scored already, the same generator at the same step, is read back),
    then evaluate's own pick (`evaluate.checkpoint`, e.g. the best so far) if it is none of them."""
    from ganlab.device import pick_device
    from ganlab.training import params

    config = params.load(repo / "params.yaml")
    device = pick_device()
    evaluated = json.loads((repo / "metrics/eval.json").read_text(encoding="utf-8"))
    evaluated_info = json.loads((repo / "reports/eval_info.json").read_text(encoding="utf-8"))

    def row(generator: str, step: int, minutes: float, metrics: dict, info: dict) -> dict:
        return {
            "generator": generator,
            "minutes": minutes,
            "step": step,
            "images_seen": step * config.batch_size,
            "fid": metrics["fid"],
            "kid": metrics["kid"],
            "classifier_fid": metrics["classifier_fid"],
            "classes_covered": metrics["classes_covered"],
            "n_fake": metrics["n_fake"],
            "n_real": metrics["n_real"],
            "inception": f"{info['inception_runtime']} {info['fid_precision']}",
        }

    rows = []
    for path in sorted((repo / "models/snapshots").glob("minute_*.pt")):
        saved = checkpoint.load(path)
        if saved["step"] == evaluated["checkpoint_step"]:
            metrics, info = evaluated, evaluated_info
        else:
            print(f"scoring {path.name}: step {saved['step']:,}", flush=True)
            metrics, info = evaluation.score_generator(path, stage_inputs(repo), config, device)
        rows.append(row("snapshot", saved["step"], saved["minutes"], metrics, info))
    step = evaluated["checkpoint_step"]
    if step not in {r["step"] for r in rows}:
        info = json.loads((repo / "reports/train_info.json").read_text(encoding="utf-8"))
        curve = info["eval_minutes"]  # minutes of training at each scored step
        last = curve[max(curve, key=int)]  # the last scored step: the budget's end
        minutes = float(curve.get(str(step), last))
        picked = f"{evaluated_info['checkpoint']} (evaluate)"
        rows.append(row(picked, step, minutes, evaluated, evaluated_info))
    return rows
