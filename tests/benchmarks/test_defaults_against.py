"""benchmarks/defaults_against.py: arms checked before any run, a finished run's row read from
its files, and a checkout whose params are not the arm's refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import defaults_against  # benchmarks/ is a folder of scripts, not a package


def test_an_arm_is_its_settings_read_as_yaml_with_the_seed():
    overrides = defaults_against.arm_params(REPO, "g.self_modulation=true epochs=18", 43)
    assert overrides == {"g.self_modulation": True, "epochs": 18, "seed": 43}


@pytest.mark.parametrize(
    ("arm", "message"),
    [("epochs=-1", "epochs = -1"), ("g.nokey=1", "unknown key 'g.nokey'"), ("lr", "KEY=VALUE")],
)
def test_a_bad_arm_stops_before_any_run_naming_the_arm(arm, message):
    with pytest.raises(SystemExit, match=message):
        defaults_against.arm_params(REPO, arm, 42)


def _finished_run(root, params: dict) -> None:
    (root / "metrics").mkdir()
    (root / "reports").mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    values = yaml.safe_load((root / "params.yaml").read_text())
    values["g"]["self_modulation"], values["seed"] = params["g.self_modulation"], params["seed"]
    (root / "params.yaml").write_text(yaml.safe_dump(values))
    scores = {"fid": 25.505765, "kid": 0.0128565, "inception_precision": 0.4878}
    scores |= {"inception_recall": 0.4132, "classifier_fid": 40.00704}
    (root / "metrics/eval.json").write_text(json.dumps(scores))
    (root / "metrics/train.json").write_text(json.dumps({"steps": 14055}))
    info = {"precision": "bf16", "train_seconds": 505.2}
    (root / "reports/train_info.json").write_text(json.dumps(info))


def test_a_finished_runs_row_comes_from_its_files(tmp_path):
    _finished_run(tmp_path, {"g.self_modulation": True, "seed": 42})
    defaults_against.check_outputs(tmp_path, {"g.self_modulation": True, "seed": 42})
    row = defaults_against.row_of(tmp_path, "g.self_modulation=true", 42)
    assert row == {
        "setting": "g.self_modulation=true",
        "seed": 42,
        "step": 14055,
        "fid": 25.51,
        "kid": 0.01286,
        "inception_precision": 0.4878,
        "inception_recall": 0.4132,
        "classifier_fid": 40.01,
        "train_precision": "bf16",
        "train_s": 505.2,
    }
    assert set(row) <= set(defaults_against.COLUMNS)


def test_a_checkout_that_ran_other_params_is_not_recorded_as_the_arm(tmp_path):
    _finished_run(tmp_path, {"g.self_modulation": False, "seed": 42})
    with pytest.raises(SystemExit, match=r"g\.self_modulation = False, the arm has True"):
        defaults_against.check_outputs(tmp_path, {"g.self_modulation": True, "seed": 42})
    with pytest.raises(SystemExit, match="seed = 42, the arm has 43"):
        defaults_against.check_outputs(tmp_path, {"g.self_modulation": False, "seed": 43})


def test_a_finished_run_is_printed_as_a_table_row(tmp_path, monkeypatch, capsys):
    _finished_run(tmp_path, {"g.self_modulation": True, "seed": 43})
    argv = ["defaults_against.py", "--outputs", str(tmp_path), "--repo", str(REPO)]
    argv += ["--arm", "g.self_modulation=true", "--seeds", "43", "--note", "a quiet CPU"]
    monkeypatch.setattr(sys, "argv", argv)
    defaults_against.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| setting | seed | G updates | FID-5k |")
    assert lines[2].startswith("| g.self_modulation=true | 43 | 14,055 | 25.51 |")
    assert "| bf16 | 505.2 | a quiet CPU |" in lines[2]


def test_each_run_is_named_by_its_arm_seed_and_invocation_as_git_allows():
    """A second invocation in the same checkout named its runs `defaults-0`, ... as the first
    had, and `dvc exp run -n` refused them: the invocation's time tells them apart."""
    first = defaults_against.experiment_name("loss=hinge ema.decay=null", 44, "20261207-234000")
    assert first == "loss-hinge-ema.decay-null-seed44-20261207-234000"
    assert (
        defaults_against.experiment_name("loss=hinge ema.decay=null", 44, "20261208-000100")
        != first
    )
    for name in (first, defaults_against.experiment_name("lr=0.0005 d.norm=..", 42, "x")):
        ref = subprocess.run(["git", "check-ref-format", f"refs/exps/{name}"])
        assert ref.returncode == 0, name
