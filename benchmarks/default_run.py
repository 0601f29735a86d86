"""The default pipeline end to end: `dvc repro` on params.yaml, timed, and its scores recorded.

    python benchmarks/default_run.py              # every stage forced, timed one by one; recorded
    python benchmarks/default_run.py --no-run --repo DIR --wall-minutes M   # record DIR's outputs

Prints the run's figures beside the rows already in reports/results/default_run.json (the
README's results table is generated from that file: `python -m ganlab.results`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from ganlab import results

TABLE = "default_run"
STAGES = ("check_params", "download", "fid_stats", "classifier", "train", "evaluate", "render")
TIMED = ("fid_stats", "classifier", "train", "evaluate")  # the rest: seconds each


def run_pipeline(repo: Path) -> dict[str, float]:
    """Every stage of dvc.yaml forced, one at a time in pipeline order; seconds per stage."""
    seconds = {}
    for stage in STAGES:
        started = time.perf_counter()
        subprocess.run(["dvc", "repro", "--force", "--single-item", stage], cwd=repo, check=True)
        seconds[stage] = time.perf_counter() - started
    return seconds


def stage_columns(seconds: dict[str, float]) -> dict[str, float]:
    """Seconds of the stages that cost minutes, the rest together, and minutes in all."""
    row = {f"{stage}_s": round(seconds[stage]) for stage in TIMED}
    row["rest_s"] = round(sum(v for k, v in seconds.items() if k not in TIMED))
    return row | {"wall_minutes": round(sum(seconds.values()) / 60, 1)}


def figures(repo: Path, wall_minutes: float) -> dict:
    """The row a finished run of the defaults gives: its scores and what each stage cost."""
    read = lambda name: json.loads((repo / name).read_text(encoding="utf-8"))  # noqa: E731
    scores, trained = read("metrics/eval.json"), read("metrics/train.json")
    timing = read("reports/train_info.json") if (repo / "reports/train_info.json").is_file() else {}
    return {
        "fid": round(scores["fid"], 2),
        "kid": round(scores["kid"], 4),
        "precision": scores["inception_precision"],
        "recall": scores["inception_recall"],
        "steps": trained["steps"],
        "train_minutes": round(
            timing.get("train_seconds", trained.get("train_seconds", 0)) / 60, 1
        ),
        "wall_minutes": round(wall_minutes, 1),
    } | ({"train_precision": timing["precision"]} if "precision" in timing else {})


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--repo", type=Path, default=results.REPO, help="the checkout to run")
    arguments.add_argument("--no-run", action="store_true", help="record the outputs there")
    arguments.add_argument("--wall-minutes", type=float, help="with --no-run: how long it took")
    arguments.add_argument("--commit", help="with --no-run: the commit that made the outputs")
    arguments.add_argument("--note", help="what a reader should know of this run")
    args = arguments.parse_args()
    if args.no_run and args.wall_minutes is None:
        arguments.error("--no-run needs --wall-minutes")
    stages = {} if args.no_run else stage_columns(run_pipeline(args.repo))
    wall = args.wall_minutes if args.no_run else stages["wall_minutes"]
    row = figures(args.repo, wall) | stages
    command = "dvc repro" if not args.no_run else " ".join(sys.argv)
    row = {"run": "defaults", **row} | ({"note": args.note} if args.note else {})
    path = results.record(TABLE, row, command, commit=args.commit)
    print(results.render_table(json.loads(path.read_text(encoding="utf-8"))))
    for document in results.write_documents():  # the README's table, from the file
        print(f"rewrote {document}")


if __name__ == "__main__":
    main()
