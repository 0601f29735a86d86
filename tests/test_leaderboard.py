import pandas as pd

from ganlab.leaderboard import leaderboard_table, to_markdown


def runs_frame() -> pd.DataFrame:
    start = pd.Timestamp("2026-01-01T10:00:00Z")
    return pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "status": ["FINISHED", "FINISHED", "FAILED", "FINISHED"],
            "start_time": [start] * 4,
            "end_time": [start + pd.Timedelta(minutes=m) for m in (3, 6, 1, 2)],
            "tags.mlflow.runName": ["base", "fast-lr", "broken", "no-eval"],
            "params.model": ["dcgan", "dcgan", "dcgan", "mlp"],
            "params.lr": ["0.0002", "0.0005", "0.1", "0.0002"],
            "metrics.fid": [54.3, 41.0, 12.0, None],
        }
    )


def test_finished_runs_with_fid_best_first():
    table = leaderboard_table(runs_frame())
    assert table["run"].tolist() == ["fast-lr", "base"]
    assert table["fid"].tolist() == [41.0, 54.3]
    assert table["wall_minutes"].tolist() == [6.0, 3.0]
    assert table["lr"].tolist() == ["0.0005", "0.0002"]


def test_markdown_has_a_header_rule_and_a_row_per_run():
    lines = to_markdown(leaderboard_table(runs_frame())).splitlines()
    assert lines[0].startswith("| run | task | dvc_experiment | model |")
    assert set(lines[1].replace("|", "").split()) == {"---"}
    assert "| fast-lr |" in lines[2] and "41" in lines[2]
    assert len(lines) == 4


def test_translation_runs_rank_within_their_own_task_after_generation():
    runs = runs_frame()
    runs["tags.translation"] = [None, None, None, "Sneaker -> Ankle boot"]
    runs.loc[3, "metrics.fid"] = 20.0  # lower than any generation run, on another task
    runs["params.model"] = ["dcgan", "dcgan", "dcgan", "cyclegan"]
    runs["params.loss"] = "bce"
    runs["params.translation.gan_loss"] = "auto"
    table = leaderboard_table(runs)
    assert table["loss"].tolist() == ["bce", "bce", "lsgan"]  # CycleGAN's own loss
    assert table["run"].tolist() == ["fast-lr", "base", "no-eval"]
    assert table["task"].tolist() == ["generation", "generation", "Sneaker -> Ankle boot"]


def test_no_runs_gives_an_empty_table():
    assert leaderboard_table(pd.DataFrame()).empty


def test_a_rescored_run_replaces_its_trainers_row():
    runs = runs_frame()
    rescored = runs.iloc[[0]].assign(
        run_id="a2", end_time=runs["end_time"].max() + pd.Timedelta(minutes=1)
    )
    rescored["tags.mlflow.runName"] = "base-rescored"
    rescored["metrics.fid"] = 50.0
    runs["tags.mlflow.parentRunId"] = None
    rescored["tags.mlflow.parentRunId"] = "a"  # nested under the run that trained the model
    table = leaderboard_table(pd.concat([runs, rescored], ignore_index=True))
    assert table["run"].tolist() == ["fast-lr", "base-rescored"]  # one row per trained model
    assert table["fid"].tolist() == [41.0, 50.0]
