from pathlib import Path

import pytest
from PIL import Image

from ganlab.cli import main
from tests.conftest import tiny_spec, write_generator_file


@pytest.fixture
def generator_file(tmp_path: Path) -> Path:
    spec = tiny_spec(z_dim=8, image_shape=(1, 28, 28), ngf=4, ndf=4)
    return write_generator_file(tmp_path / "generator.pt", spec)


def test_sample_writes_a_grid_and_individual_pngs_reproducibly(
    generator_file: Path, tmp_path: Path
):
    args = ["sample", "--checkpoint", str(generator_file), "-n", "6", "--nrow", "3", "--seed", "5"]
    assert (
        main([*args, "--out", str(tmp_path / "a.png"), "--individual", str(tmp_path / "each")]) == 0
    )
    assert main([*args, "--out", str(tmp_path / "b.png")]) == 0
    grid = Image.open(tmp_path / "a.png")
    assert grid.size == (3 * 30 + 2, 2 * 30 + 2)  # make_grid: 2-pixel padding around 28x28 cells
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()  # same seed
    assert len(list((tmp_path / "each").glob("*.png"))) == 6


def test_interpolate_writes_a_grid_row_per_walk_and_a_gif(generator_file: Path, tmp_path: Path):
    code = main(
        [
            "interpolate",
            "--checkpoint",
            str(generator_file),
            "--seeds",
            "1",
            "2",
            "3",
            "--steps",
            "5",
            "--out",
            str(tmp_path / "walk.png"),
            "--gif",
            str(tmp_path / "walk.gif"),
        ]
    )
    assert code == 0
    assert Image.open(tmp_path / "walk.png").size == (5 * 30 + 2, 2 * 30 + 2)
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 8  # 5 steps there, 3 back (the ends aren't repeated)
    assert gif.size == (2 * 30 + 2, 30 + 2)  # both walks side by side


def test_missing_checkpoint_is_one_clear_line(tmp_path: Path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"ganlab: error: {tmp_path / 'nope.pt'} does not exist: expected a generator.pt"
    )


def test_interpolation_needs_two_seeds(generator_file: Path, tmp_path: Path, capsys):
    code = main(
        [
            "interpolate",
            "--checkpoint",
            str(generator_file),
            "--seeds",
            "1",
            "--out",
            str(tmp_path / "x.png"),
        ]
    )
    assert code == 2 and "at least two seeds" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["sample", "interpolate", "leaderboard"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: ganlab " + command in capsys.readouterr().out


def test_unknown_registered_model_and_run_are_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))  # an empty MLflow store of its own
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["sample", "--model", "models:/nobody/1", "-n", "4"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "mlflow" not in line[:40]]
    assert errors == [errors[0]] and "Traceback" not in errors[0]  # one line, no traceback
    assert errors[0].startswith("ganlab: error: registered model 'models:/nobody/1'")
    assert main(["sample", "--run", "0123456789abcdef", "-n", "4"]) == 2
    assert "ganlab: error: " in capsys.readouterr().err


def test_a_class_for_an_unconditional_generator_is_refused_by_name(
    generator_file: Path, tmp_path: Path, capsys
):
    args = ["sample", "--checkpoint", str(generator_file), "--class", "3"]
    assert main([*args, "--out", str(tmp_path / "x.png")]) == 2
    assert "--class" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
