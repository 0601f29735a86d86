"""benchmarks/quality.py puts a recipe on the clock, and with --against a change to it beside."""

from __future__ import annotations

import sys

import pytest
from PIL import Image

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import quality  # benchmarks/ is a folder of scripts, not a package


def test_against_runs_the_preset_again_with_the_settings_read_as_yaml():
    runs = quality.runs_of("fashion_30min", {"epochs": 1000}, ["g.self_modulation=false"])
    assert runs == {
        "fashion_30min": {"epochs": 1000},
        "fashion_30min, g.self_modulation=false": {"epochs": 1000, "g.self_modulation": False},
    }
    assert list(quality.runs_of("fashion_30min", {}, [])) == ["fashion_30min"]


@pytest.mark.parametrize(
    ("against", "message"),
    [
        (["g.self_modulation"], "expected KEY=VALUE"),
        (["g.self_modulation=maybe"], "g.self_modulation = 'maybe' has the wrong type"),
        (["g.nokey=1"], "unknown key 'g.nokey'"),
    ],
)
def test_a_bad_setting_is_refused_before_any_training(against, message):
    with pytest.raises(SystemExit, match=message):
        quality.runs_of("fashion_30min", {}, against)


def test_side_by_side_lines_the_runs_up_by_minutes():
    def snapshot(minutes, step, fid):
        return {"generator": "snapshot", "minutes": minutes, "step": step, "fid": fid}

    scored = {
        "new": [snapshot(10, 16000, 20.0), snapshot(20, 31000, 16.5), snapshot(30, 47000, 15.0)],
        "old": [
            snapshot(10, 17000, 21.0),
            snapshot(20, 33000, 17.25),
            {"generator": "best (evaluate)", "minutes": 19.5, "step": 32500, "fid": 17.0},
        ],
    }
    lines = quality.side_by_side(scored).splitlines()
    assert lines[0] == "| minutes | new | old |"
    assert lines[2:] == [
        "| 10 | 20.00 (step 16,000) | 21.00 (step 17,000) |",
        "| 20 | 16.50 (step 31,000) | 17.25 (step 33,000) |",
        "| 30 | 15.00 (step 47,000) |  |",
    ]


def test_the_side_by_side_picture_draws_a_line_a_run(tmp_path, monkeypatch):
    from ganlab import plots

    drawn = {}
    save_curves = plots.save_curves

    def spy(frame, labels, path, *args, **kwargs):
        drawn["frame"], drawn["labels"] = frame, labels
        save_curves(frame, labels, path, *args, **kwargs)

    monkeypatch.setattr(plots, "save_curves", spy)
    snapshot = lambda minutes, fid: {"generator": "snapshot", "minutes": minutes, "fid": fid}  # noqa: E731
    scored = {
        "new": [snapshot(10, 20.0), snapshot(20, 16.5)],
        "old": [snapshot(10, 21.0), {"generator": "best", "minutes": 15, "fid": 1.0}],
    }
    quality.draw_side_by_side(scored, tmp_path / "side.png")
    assert drawn["labels"] == {"new": "new", "old": "old"}
    assert drawn["frame"]["minutes"].tolist() == [10, 20]
    assert drawn["frame"]["new"].tolist() == [20.0, 16.5]
    assert drawn["frame"]["old"].iloc[0] == 21.0 and drawn["frame"]["old"].isna().iloc[1]
    assert Image.open(tmp_path / "side.png").size == (800, 450)
