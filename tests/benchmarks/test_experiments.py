"""benchmarks/experiments.py scores snapshots (quality.py, model_zoo.py) on dvc.yaml's files."""

from __future__ import annotations

import dataclasses
import shlex
import sys

import yaml

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import experiments  # benchmarks/ is a folder of scripts, not a package


def test_the_snapshots_are_scored_on_the_files_the_evaluate_stage_reads():
    command = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["evaluate"]["cmd"]
    words = shlex.split(command)
    stage_args = {
        words[i][2:].replace("-", "_"): words[i + 1]
        for i in range(len(words) - 1)
        if words[i].startswith("--")
    }
    inputs = dataclasses.asdict(experiments.stage_inputs(REPO))
    for name, path in inputs.items():
        assert path == REPO / stage_args[name], name


def test_evaluates_pick_joins_the_snapshots_with_its_minutes_of_training(tmp_path, monkeypatch):
    """A run that got worse late: its 10- and 20-minute snapshots, then the best-so-far generator
    evaluate scored (step 15,500, 12.2 minutes in), which is neither; the 20-minute snapshot is
    scored anew, the pick is read back from evaluate's metrics, not scored again."""
    import json
    import shutil

    from ganlab import checkpoint, evaluation

    shutil.copyfile(REPO / "params.yaml", tmp_path / "params.yaml")
    for step, minutes in ((12800, 10.0), (25600, 20.0)):
        path = tmp_path / f"models/snapshots/minute_{minutes:07.2f}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.save(path, {"step": step, "minutes": minutes})
    scores = {"fid": 20.0, "kid": 0.01, "classifier_fid": 35.0, "classes_covered": 10}
    scores |= {"n_fake": 10000, "n_real": 10000}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/eval.json").write_text(json.dumps(scores | {"checkpoint_step": 15500}))
    (tmp_path / "reports").mkdir()
    minutes = {"15000": 11.8, "15500": 12.195, "9000": 7.1}  # as JSON sorts the keys
    timing = {"train_seconds": 1000.0, "eval_minutes": minutes}
    (tmp_path / "reports/train_info.json").write_text(json.dumps(timing))
    info = {"checkpoint": "best", "inception_runtime": "onnxruntime", "fid_precision": "fp32"}
    (tmp_path / "reports/eval_info.json").write_text(json.dumps(info))
    scored = []

    def score_generator(generator, references, config, device):
        scored.append(generator.name)
        return scores | {"fid": 25.0 + len(scored)}, info

    monkeypatch.setattr(evaluation, "score_generator", score_generator)
    rows = experiments.score_snapshots(tmp_path)

    assert scored == ["minute_0010.00.pt", "minute_0020.00.pt"]
    picked = rows[-1]
    assert [r["generator"] for r in rows] == ["snapshot", "snapshot", "best (evaluate)"]
    assert (picked["step"], picked["minutes"], picked["fid"]) == (15500, 12.195, 20.0)


def test_the_workspace_comes_back_as_committed_but_the_rows_recorded_stay(tmp_path):
    """Between a benchmark's runs: params, metrics and reports as committed, except
    reports/results/, where the rows recorded after the earlier runs are (the second arm's
    restore used to wipe the first arm's row from a committed table)."""
    import subprocess

    files = {
        "params.yaml": "lr: 0.0002\n",
        "metrics/eval.json": "{}\n",
        "reports/train_info.json": "{}\n",
        "reports/results/table.json": '{"rows": []}\n',
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    git = lambda *args: subprocess.run(["git", *args], cwd=tmp_path, check=True)  # noqa: E731
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "committed")
    for name in files:
        (tmp_path / name).write_text("changed by a run\n")
    experiments.restore_workspace(tmp_path)
    for name, text in files.items():
        expected = "changed by a run\n" if name.startswith("reports/results/") else text
        assert (tmp_path / name).read_text() == expected, name
