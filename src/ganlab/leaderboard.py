"""The MLflow runs as a ranked table: which settings gave the best FID.

FIDs compare only within a task, so runs are grouped by it: noise-to-image generation
first, then each translation (pix2pix, CycleGAN) by its domains."""

from __future__ import annotations

import pandas as pd

GENERATION = "generation"
COLUMNS = {
    "tags.mlflow.runName": "run",
    "tags.translation": "task",
    "tags.dvc_exp_name": "dvc_experiment",
    "params.model": "model",
    "params.dataset": "dataset",
    "params.loss": "loss",
    "params.lr": "lr",
    "params.epochs": "epochs",
    "metrics.fid": "fid",
    "metrics.kid": "kid",
    "metrics.inception_score": "inception_score",
    "metrics.classifier_score": "classifier_score",
    "metrics.classes_covered": "classes_covered",
    "metrics.n_fake": "n_fake",
}


def leaderboard_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished runs with an FID, best first, with their wall time in minutes."""
    if runs.empty or "metrics.fid" not in runs:
        return pd.DataFrame(columns=[*COLUMNS.values(), "wall_minutes", "run_id"])
    scored = runs[runs["metrics.fid"].notna() & (runs["status"] == "FINISHED")].copy()
    # one row per trained model: a re-scored run (nested under its trainer) replaces the
    # trainer's own evaluation when it is newer
    parent = scored.get("tags.mlflow.parentRunId", pd.Series(None, index=scored.index))
    scored["_model"] = parent.astype(object).where(parent.notna(), scored["run_id"])
    scored = scored.sort_values("end_time").drop_duplicates("_model", keep="last")
    table = pd.DataFrame({name: scored.get(column) for column, name in COLUMNS.items()})
    table["task"] = table["task"].fillna(GENERATION)
    if "params.translation.gan_loss" in scored:  # translators: the loss they trained with
        from ganlab.training.params import PAPER_LOSS

        paper = scored["params.model"].map(PAPER_LOSS)
        chosen = scored["params.translation.gan_loss"]
        translated = paper.notna().to_numpy()
        resolved = chosen.where(chosen != "auto", paper)
        table.loc[translated, "loss"] = resolved[translated].to_numpy()
    minutes = (scored["end_time"] - scored["start_time"]).dt.total_seconds() / 60
    table["wall_minutes"] = minutes.round(1)
    table["run_id"] = scored["run_id"]
    translation_last = table["task"] != GENERATION
    order = table.assign(_last=translation_last).sort_values(
        ["_last", "task", "fid"], kind="stable"
    )
    return table.loc[order.index].reset_index(drop=True)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency such as tabulate)."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"

    def cell(value: object) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"
