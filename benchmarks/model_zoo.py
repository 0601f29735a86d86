"""Every GAN preset on Fashion-MNIST for the same wall-clock training budget, as real pipeline runs.

Each preset is a `dvc exp run` (so it lands in MLflow and `ganlab leaderboard` like any
run) with `train.max_minutes` as the budget and a large `epochs` so the budget is what
stops it. Prints one row per preset: images seen, G updates, FID (2048-d Inception, with
sample counts), classifier FID, classes covered, wall time, read back from MLflow. The
workspace's params.yaml, dvc.lock, metrics and outputs are restored afterwards.

With `--every M`, G is kept every M minutes of training and each snapshot is scored like the
final one (same FID, same sample counts): the curve goes into the preset's MLflow run as
`snapshot/fid` by step, and the table gains the minutes of training each preset needed to reach
`--target` (the first snapshot at or under it), a time-to-quality board for this machine.

    python benchmarks/model_zoo.py --minutes 5 --n-fake 2000   # ~8.5 min a preset on a Zen 2 EPYC
    python benchmarks/model_zoo.py --minutes 10 --every 2.5 --n-fake 2000 --presets cgan_projection
    # ~24 min on the Zen 2 EPYC: 10 of training, a FID-2k per snapshot (README: the board)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from experiments import restore_workspace, run_preset, score_snapshots
from ganlab import results
from ganlab.presets import LESSONS, PAPERS, PRESETS

# The zoo's rows: the papers' GANs and the lessons taught on Fashion-MNIST (the lessons on
# MNIST, SVHN and CelebA need data this machine can't download; the recipes set their own time).
ZOO = [*PAPERS, *(name for name, p in LESSONS.items() if p["dataset"] == "fashion_mnist")]

REPO = Path(__file__).resolve().parents[1]


def run_name(preset: str) -> str:
    return f"zoo-{preset.replace('_', '-')}"


def minutes_to_reach(curve: list[dict], target: float) -> float | None:
    """Training minutes of the first snapshot scoring FID <= target; None: none did."""
    for point in sorted(curve, key=lambda point: point["minutes"]):
        if point["fid"] <= target:
            return point["minutes"]
    return None


def log_curve(repo: Path, curve: list[dict], target: float) -> None:
    """The snapshots' FIDs into the run `dvc exp run` just made (left FINISHED, its times kept),
    and the minutes to the target when one reached it."""
    from mlflow import MlflowClient

    from ganlab import tracking

    os.environ["DVC_ROOT"] = str(repo)
    tracking.connect()
    client, run_id = MlflowClient(), tracking.read_run_id(repo / "models/train_run.json")
    for point in curve:
        client.log_metric(run_id, "snapshot/fid", point["fid"], step=point["step"])
        client.log_metric(run_id, "snapshot/minutes", point["minutes"], step=point["step"])
    minutes = minutes_to_reach(curve, target)
    if minutes is not None:
        client.log_metric(run_id, metric_to_reach(target), minutes)


def metric_to_reach(target: float) -> str:
    return f"minutes_to_fid_{target:g}"


def reach_cell(row: dict) -> str:
    """The board's cell: minutes; 'not in N' (the budget's minutes) when the snapshots never
    reached the target; '-' for a run scored without snapshots."""
    if row["minutes_to_target"] is not None:
        return f"{row['minutes_to_target']:.1f}"
    if row["curve_scored"]:
        return f"not in {row['train_s'] / 60:.0f}"
    return "-"


def table_from_mlflow(repo: Path, presets: list[str], target: float = 30.0) -> list[dict]:
    """The latest finished MLflow run of each preset (as `dvc exp run` named it)."""
    os.environ["DVC_ROOT"] = str(repo)
    from ganlab import tracking

    runs = tracking.runs_frame()
    rows = []
    for preset in presets:
        named = runs["tags.mlflow.runName"] == run_name(preset)
        mine = runs[named & (runs["status"] == "FINISHED") & runs["metrics.fid"].notna()]
        mine = mine.sort_values("start_time")
        if mine.empty:
            continue
        run = mine.iloc[-1]
        rows.append(
            {
                "preset": preset,
                "model": PRESETS[preset].get("model", "dcgan"),
                "loss": PRESETS[preset].get("loss", "bce"),
                "conditional": PRESETS[preset].get("classes.conditional", "none"),
                "images_seen": int(run["metrics.images_seen"]),
                # a step is one batch for D; G learns once every n_critic of them
                "g_updates": int(run["metrics.steps"]) // PRESETS[preset].get("n_critic", 1),
                "train_s": run["metrics.train_seconds"],
                "fid": run["metrics.fid"],
                "n_real": int(run["metrics.n_real"]),
                "n_fake": int(run["metrics.n_fake"]),
                "classifier_fid": run["metrics.classifier_fid"],
                "classes_covered": int(run["metrics.classes_covered"]),
                "wall_s": (run["end_time"] - run["start_time"]).total_seconds(),
                "minutes_to_target": _metric(run, metric_to_reach(target)),
                "curve_scored": _metric(run, "snapshot/fid") is not None,
            }
        )
    return rows


def _metric(run, name: str) -> float | None:
    value = run.get(f"metrics.{name}")
    return None if value is None or math.isnan(value) else float(value)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--repo", type=Path, default=REPO, help="the ganlab repository")
    arguments.add_argument("--minutes", type=float, default=3.0, help="training budget per preset")
    arguments.add_argument("--n-fake", type=int, default=5000, help="generated images for FID")
    arguments.add_argument("--presets", nargs="+", default=ZOO, choices=list(PRESETS))
    arguments.add_argument(
        "--every", type=float, help="minutes between snapshots scored for the time-to-FID board"
    )
    arguments.add_argument("--target", type=float, default=30.0, help="the board's FID")
    arguments.add_argument(
        "--table-only", action="store_true", help="print the table of runs already in MLflow"
    )
    arguments.add_argument("--out", type=Path, help="also write the table as Markdown here")
    arguments.add_argument(
        "--record",
        action="store_true",
        help="append the rows, with this machine's record, to reports/results/model_zoo.json",
    )
    args = arguments.parse_args()

    if not args.table_only:
        failed = []
        try:
            for name in args.presets:
                print(f"\n=== {name}: {args.minutes} min of training ===", flush=True)
                budget = {"epochs": 1000, "train.max_minutes": args.minutes}
                overrides = budget | {"fid.n_fake": args.n_fake}
                if args.every:
                    overrides["train.snapshot_minutes"] = args.every
                if not run_preset(args.repo, name, run_name(name), overrides):
                    failed.append(name)
                elif args.every:  # before the next run replaces the snapshots
                    log_curve(args.repo, score_snapshots(args.repo), args.target)
        finally:
            restore_workspace(args.repo)
        if failed:
            print(f"\nfailed presets (see their output above): {', '.join(failed)}")

    rows = table_from_mlflow(args.repo, args.presets, args.target)
    header = (
        "| preset | model | loss | conditional | images seen | G updates | FID | n real / fake "
        f"| classifier FID | classes covered | train s | wall s | minutes to FID {args.target:g} |"
    )
    lines = [header, "|" + " --- |" * 13]
    for r in sorted(rows, key=lambda r: r["fid"]):
        lines.append(
            f"| {r['preset']} | {r['model']} | {r['loss']} | {r['conditional']} "
            f"| {r['images_seen']:,} | {r['g_updates']:,} "
            f"| {r['fid']:.1f} | {r['n_real']} / {r['n_fake']} "
            f"| {r['classifier_fid']:.1f} | {r['classes_covered']}/10 "
            f"| {r['train_s']:.0f} | {r['wall_s']:.0f} | {reach_cell(r)} |"
        )
    table = "\n".join(lines)
    print(f"\nFashion-MNIST, {args.minutes} min of training each; FID: Inception pool3, 2048-d\n")
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    if args.record:  # docs/models.md's table is generated from it: python -m ganlab.results
        command = "python benchmarks/model_zoo.py " + " ".join(sys.argv[1:])
        for r in sorted(rows, key=lambda r: r["fid"]):
            kept = {k: v for k, v in r.items() if k not in ("minutes_to_target", "curve_scored")}
            results.record("model_zoo", kept | {"fid": round(r["fid"], 1)}, command, root=args.repo)
        results.write_documents(args.repo)


if __name__ == "__main__":
    main()
