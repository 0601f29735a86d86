"""Every GAN preset on Fashion-MNIST for the same wall-clock training budget, as real pipeline runs.

Each preset is a `dvc exp run` (so it lands in MLflow and `ganlab leaderboard` like any
run) with `train.max_minutes` as the budget and a large `epochs` so the budget is what
stops it. Prints one row per preset: images seen, FID (2048-d Inception, with sample
counts), classifier FID, classes covered, wall time. The workspace's params.yaml,
dvc.lock and outputs are restored afterwards.

    python benchmarks/model_zoo.py --minutes 3      # about 6 minutes per preset here
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from ganlab.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]


def run_preset(repo: Path, name: str, minutes: float, n_fake: int) -> dict:
    budget = {"epochs": 1000, "train.max_minutes": minutes, "fid.n_fake": n_fake}
    overrides = {**PRESETS[name], **budget}
    sets = [arg for k, v in overrides.items() for arg in ("-S", f"{k}={_yaml(v)}")]
    started = time.perf_counter()
    subprocess.run(
        ["dvc", "exp", "run", "-n", f"zoo-{name.replace('_', '-')}", *sets], cwd=repo, check=True
    )
    wall = time.perf_counter() - started
    train = json.loads((repo / "metrics/train.json").read_text())
    evaluation = json.loads((repo / "metrics/eval.json").read_text())
    domain = evaluation["classifier"]
    return {
        "preset": name,
        "model": PRESETS[name].get("model", "dcgan"),
        "loss": PRESETS[name].get("loss", "bce"),
        "conditional": PRESETS[name].get("conditional", "none"),
        "images_seen": train["images_seen"],
        "train_s": train["train_seconds"],
        "fid": evaluation["fid"],
        "n_real": evaluation["n_real"],
        "n_fake": evaluation["n_fake"],
        "classifier_fid": domain["fid"],
        "classes_covered": domain["coverage"]["classes_covered"],
        "wall_s": wall,
    }


def _yaml(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--repo", type=Path, default=REPO, help="the ganlab repository")
    arguments.add_argument("--minutes", type=float, default=3.0, help="training budget per preset")
    arguments.add_argument("--n-fake", type=int, default=5000, help="generated images for FID")
    arguments.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    arguments.add_argument("--out", type=Path, help="also write the table as Markdown here")
    args = arguments.parse_args()

    saved = {name: (args.repo / name).read_text() for name in ("params.yaml", "dvc.lock")}
    rows = []
    try:
        for name in args.presets:
            print(f"\n=== {name}: {args.minutes} min of training ===", flush=True)
            rows.append(run_preset(args.repo, name, args.minutes, args.n_fake))
    finally:
        for name, text in saved.items():
            (args.repo / name).write_text(text)
        subprocess.run(["dvc", "checkout", "--force", "--quiet"], cwd=args.repo, check=False)

    header = (
        "| preset | model | loss | conditional | images seen | FID | n real / fake "
        "| classifier FID | classes covered | train s | wall s |"
    )
    lines = [header, "|" + " --- |" * 11]
    for r in sorted(rows, key=lambda r: r["fid"]):
        lines.append(
            f"| {r['preset']} | {r['model']} | {r['loss']} | {r['conditional']} "
            f"| {r['images_seen']:,} | {r['fid']:.1f} | {r['n_real']} / {r['n_fake']} "
            f"| {r['classifier_fid']:.2f} | {r['classes_covered']}/10 "
            f"| {r['train_s']:.0f} | {r['wall_s']:.0f} |"
        )
    table = "\n".join(lines)
    print(f"\nFashion-MNIST, {args.minutes} min of training each, FID: Inception pool3 2048-d\n")
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
