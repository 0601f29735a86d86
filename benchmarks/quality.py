"""The lab's time-budget recipe on Fashion-MNIST: FID-10k after 10, 20 and 30 minutes of training.

One `dvc exp run` of the recipe preset (`train.max_minutes` as the budget, a snapshot of G
every `--every` minutes, FID reference statistics of 10,000 training images), then every
snapshot is scored with the evaluate stage's own code on 10,000 fakes: pytorch-fid's network
and math in fp32, the exact path. Prints one row per snapshot, and one for the generator the
evaluate stage picked (`evaluate.checkpoint`: the best so far) beside the published
Fashion-MNIST FIDs, draws FID against minutes, keeps the run's sample grid, and puts the
workspace back as committed. Any preset can be put on the clock (`--preset cgan_projection`).

    python benchmarks/quality.py        # ~65 min on a 2-core CPU: 30 of training, FID the rest
    dvc exp apply quality-fashion-30min && python benchmarks/quality.py --score-only
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import pandas as pd

from experiments import restore_workspace, run_preset, score_snapshots
from ganlab.device import cpu_model
from ganlab.io import write_json
from ganlab.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
# Lucic et al. 2018, "Are GANs Created Equal?", best FID on Fashion-MNIST (large GPU budgets)
PUBLISHED = {"WGAN (Lucic et al. 2018)": 21.5, "NS GAN (Lucic et al. 2018)": 26.5}


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


def keep_pictures(repo: Path, rows: list[dict], out: Path) -> None:
    """FID against minutes, and the run's sample grid, into `out` (before the workspace goes)."""
    from ganlab.plots import save_curves

    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([r for r in rows if r["generator"] == "snapshot"])
    title = "FID-10k of the recipe against minutes of training (Fashion-MNIST)"
    save_curves(frame, {"fid": "FID-10k"}, out / "quality_fid.png", title, "FID", x="minutes")
    shutil.copyfile(repo / "reports/figures/samples.png", out / "quality_samples.png")
    write_json(out / "quality.json", rows, sort_keys=False)


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
    args = arguments.parse_args()

    os.environ["DVC_ROOT"] = str(args.repo)
    # epochs: enough that the minutes are what stops training, as the recipes set it
    budget = {
        "epochs": 1000,
        "train.max_minutes": args.minutes,
        "train.snapshot_minutes": args.every,
    }
    overrides = budget | {"fid.n_real": args.n, "fid.n_fake": args.n}
    name = f"quality-{args.preset.replace('_', '-')}"
    try:
        if not args.score_only and not run_preset(args.repo, args.preset, name, overrides):
            raise SystemExit(f"`dvc exp run -n {name}` failed: see its output above")
        rows = score_snapshots(args.repo)
        keep_pictures(args.repo, rows, args.out)
    finally:
        restore_workspace(args.repo)
    print(f"\n{args.preset} on Fashion-MNIST, {cpu_model()}; FID: pytorch-fid Inception pool3,")
    print(f"{rows[0]['inception']}, {args.n:,} generated vs {args.n:,} training images\n")
    print(table(rows))
    print(f"\ncurve, grid and numbers: {args.out}")


if __name__ == "__main__":
    main()
