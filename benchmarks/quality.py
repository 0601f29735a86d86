"""The lab's time-budget recipe on Fashion-MNIST: FID-10k after 10, 20 and 30 minutes of training.

One `dvc exp run` of the recipe preset (`train.max_minutes` as the budget, a snapshot of G
every `--every` minutes, FID reference statistics of 10,000 training images), then every
snapshot is scored with the evaluate stage's own code on 10,000 fakes: pytorch-fid's network
and math in fp32, the exact path. Prints one row per snapshot, and one for the generator the
evaluate stage picked (`evaluate.checkpoint`: the best so far) beside the published
Fashion-MNIST FIDs, draws FID against minutes, keeps the run's sample grid, and puts the
workspace back as committed. Any preset can be put on the clock (`--preset cgan_projection`).
`--against KEY=VALUE ...` runs the preset a second time with those settings, right after the
first on the same machine, and prints the two side by side (a change to a recipe against the
recipe before it); `--record TABLE` appends the rows to reports/results/TABLE.json.

    python benchmarks/quality.py        # ~65 min on a 2-core CPU: 30 of training, FID the rest
    python benchmarks/quality.py --against g.self_modulation=false --record recipe_30min_NAME
    dvc exp apply quality-fashion-30min && python benchmarks/quality.py --score-only
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from experiments import preset_params, restore_workspace, run_preset, score_snapshots
from ganlab import results
from ganlab.config import ConfigError
from ganlab.device import cpu_model
from ganlab.io import write_json
from ganlab.presets import PRESETS
from ganlab.training.params import from_mapping

REPO = Path(__file__).resolve().parents[1]
# Lucic et al. 2018, "Are GANs Created Equal?", best FID on Fashion-MNIST (large GPU budgets)
PUBLISHED = {"WGAN (Lucic et al. 2018)": 21.5, "NS GAN (Lucic et al. 2018)": 26.5}
COLUMNS = {  # --record's table: key -> header
    "run": "run",
    "generator": "generator",
    "minutes": "minutes",
    "step": "step",
    "images_seen": "images seen",
    "fid": "FID-10k",
    "kid": "KID",
    "classifier_fid": "classifier FID",
}


def settings_of(pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` words as `-S` overrides, each value read as YAML (false, 0.0005, [1, 2])."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(
                f"--against {pair!r}: expected KEY=VALUE, e.g. g.self_modulation=false"
            )
        settings[key] = yaml.safe_load(value)
    return settings


def runs_of(preset: str, overrides: dict[str, Any], against: list[str]) -> dict[str, dict]:
    """Each run's label and `-S` overrides: the preset, then (with --against) the preset with
    those settings; every one checked as the stages will check it, before any training."""
    runs = {preset: overrides}
    if against:
        runs[f"{preset}, {' '.join(against)}"] = overrides | settings_of(against)
    for label, settings in runs.items():
        try:
            from_mapping(preset_params(preset, settings))
        except ConfigError as error:
            raise SystemExit(f"{label}: {error}") from None
    return runs


def side_by_side(scored: dict[str, list[dict]]) -> str:
    """FID-10k of each run's snapshots at the same minutes, the runs as columns (the view
    docs/ renders from the recorded table, here without the machine: one machine ran both)."""
    rows = [{"run": label, **r, "machine": {"cpu": ""}} for label, rs in scored.items() for r in rs]
    view = results.runs_side_by_side({"columns": COLUMNS, "rows": rows})
    runs = [
        header.rsplit(": ", 1)[0] for key, header in view["columns"].items() if key != "minutes"
    ]
    lines = ["| minutes | " + " | ".join(runs) + " |", "| ---: |" + " ---: |" * len(runs)]
    for row in view["rows"]:
        lines.append("| " + " | ".join(results.cell(row[k]) for k in view["columns"]) + " |")
    return "\n".join(lines)


def draw_side_by_side(scored: dict[str, list[dict]], path: Path) -> None:
    """FID-10k against minutes, a line a run: the comparison as a picture."""
    from ganlab.plots import save_curves

    fid = {
        label: {r["minutes"]: r["fid"] for r in rows if r["generator"] == "snapshot"}
        for label, rows in scored.items()
    }
    frame = pd.DataFrame(fid).sort_index().rename_axis("minutes").reset_index()
    title = "FID-10k against minutes of training (Fashion-MNIST), one run after the other"
    save_curves(frame, {label: label for label in fid}, path, title, "FID-10k", x="minutes")


def table(rows: list[dict]) -> str:
    lines = [
        "| generator | minutes | step | images seen | FID | KID | classifier FID | classes "
        "| n real / fake |",
        "| --- |" + " ---: |" * 8,
    ]
    for r in rows:
        lines.append(
            f"| {r['generator']} | {r['minutes']:g} | {r['step']:,} | {r['images_seen']:,} "
            f"| **{r['fid']:.2f}** "
            f"| {r['kid']:.4f} | {r['classifier_fid']:.1f} | {r['classes_covered']}/10 "
            f"| {r['n_real']:,} / {r['n_fake']:,} |"
        )
    for name, value in PUBLISHED.items():
        lines.append(f"| {name} | | | | {value} | | | | 10,000 / 10,000 |")
    return "\n".join(lines)


def keep_pictures(repo: Path, rows: list[dict], out: Path, stem: str = "quality") -> None:
    """FID against minutes, and the run's sample grid, into `out` (before the workspace goes)."""
    from ganlab.plots import save_curves

    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([r for r in rows if r["generator"] == "snapshot"])
    title = "FID-10k of the recipe against minutes of training (Fashion-MNIST)"
    save_curves(frame, {"fid": "FID-10k"}, out / f"{stem}_fid.png", title, "FID", x="minutes")
    shutil.copyfile(repo / "reports/figures/samples.png", out / f"{stem}_samples.png")
    write_json(out / f"{stem}.json", rows, sort_keys=False)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--repo", type=Path, default=REPO, help="the ganlab repository")
    arguments.add_argument(
        "--preset", default="fashion_30min", choices=list(PRESETS), help="a recipe, or any preset"
    )
    arguments.add_argument("--minutes", type=float, default=30.0, help="training budget")
    arguments.add_argument("--every", type=float, default=10.0, help="minutes between snapshots")
    arguments.add_argument("--n", type=int, default=10000, help="fakes and reals for FID")
    arguments.add_argument(
        "--out", type=Path, default=REPO / "reports/quality", help="curve, grid and JSON here"
    )
    arguments.add_argument(
        "--score-only",
        action="store_true",
        help="score the experiment in the workspace (after `dvc exp apply quality-...`)",
    )
    arguments.add_argument(
        "--against",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="then the preset with these settings, beside it (e.g. g.self_modulation=false)",
    )
    arguments.add_argument("--record", metavar="TABLE", help="append to reports/results/TABLE")
    args = arguments.parse_args()
    if args.score_only and args.against:
        raise SystemExit("--score-only scores the one experiment in the workspace: no --against")

    os.environ["DVC_ROOT"] = str(args.repo)
    # epochs: enough that the minutes are what stops training, as the recipes set it
    budget = {
        "epochs": 1000,
        "train.max_minutes": args.minutes,
        "train.snapshot_minutes": args.every,
    }
    runs = runs_of(args.preset, budget | {"fid.n_real": args.n, "fid.n_fake": args.n}, args.against)
    commit = results.git_commit(args.repo)  # the code that trains, whatever is committed meanwhile
    command = shlex.join(["python", "benchmarks/quality.py", *sys.argv[1:]])
    scored: dict[str, list[dict]] = {}
    for number, (label, overrides) in enumerate(runs.items()):
        name = f"quality-{args.preset.replace('_', '-')}" + ("-against" if number else "")
        try:
            if not args.score_only and not run_preset(args.repo, args.preset, name, overrides):
                raise SystemExit(f"`dvc exp run -n {name}` failed: see its output above")
            rows = score_snapshots(args.repo)
            keep_pictures(args.repo, rows, args.out, "quality_against" if number else "quality")
        finally:
            restore_workspace(args.repo)
        scored[label] = rows
        if args.record:
            recorded = [
                {"run": label, **{key: row[key] for key in COLUMNS if key in row}} for row in rows
            ]
            results.record_rows(args.record, COLUMNS, recorded, command, commit=commit)
        print(f"\n{label} on Fashion-MNIST, {cpu_model()}; FID: pytorch-fid Inception pool3,")
        print(f"{rows[0]['inception']}, {args.n:,} generated vs {args.n:,} training images\n")
        print(table(rows))
    if len(scored) > 1:
        print(
            f"\nFID-10k after each snapshot's minutes, one run after the other ({cpu_model()}):\n"
        )
        print(side_by_side(scored))
        draw_side_by_side(scored, args.out / "quality_side_by_side.png")
    print(f"\ncurves, grids and numbers: {args.out}")


if __name__ == "__main__":
    main()
