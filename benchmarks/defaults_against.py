"""params.yaml's defaults with a change against the defaults with another, seed by seed: each
arm a real `dvc exp run` in this workspace (fid_stats and classifier come from DVC's cache after
the first), scored by the evaluate stage (FID-5k of the best generator), recorded with this
machine. What a change of a default is decided on.

    python benchmarks/defaults_against.py --arm g.self_modulation=false \\
        --arm g.self_modulation=true --seeds 42 43 --record default_self_modulation
    python benchmarks/defaults_against.py --outputs DIR --arm g.self_modulation=true \\
        --seeds 42 --commit C --record TABLE      # a finished run's outputs in checkout DIR

An arm is one or more KEY=VALUE words (`-S` overrides, values read as YAML). The workspace is
put back as committed after each run (params, lock file, metrics and outputs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from experiments import REPO, restore_workspace, run_preset
from ganlab import results
from ganlab.config import ConfigError, flatten, with_overrides
from ganlab.device import cpu_model
from ganlab.training import params
from ganlab.training.params import from_mapping
from quality import settings_of

COLUMNS = {  # --record's table: key -> header
    "setting": "setting",
    "seed": "seed",
    "step": "G updates",
    "fid": "FID-5k",
    "kid": "KID",
    "inception_precision": "precision",
    "inception_recall": "recall",
    "classifier_fid": "classifier FID",
    "train_precision": "trained in",
    "train_s": "train s",
    "note": "note",
}


def experiment_name(arm: str, seed: int, stamp: str) -> str:
    """The arm's `dvc exp run -n` name: its settings, seed and this invocation's time, so that
    a later invocation in the same checkout does not collide with an earlier one's runs."""
    words = re.sub(r"[^A-Za-z0-9_.]+", "-", arm).strip("-.").replace("..", ".")
    return f"{words[:60]}-seed{seed}-{stamp}"


def arm_params(repo: Path, arm: str, seed: int) -> dict[str, Any]:
    """The arm's `-S` overrides with the seed, checked as the stages will check them."""
    overrides = settings_of(arm.split()) | {"seed": seed}
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    try:
        from_mapping(with_overrides(params, overrides))
    except ConfigError as error:
        raise SystemExit(f"--arm {arm!r}: {error}") from None
    return overrides


def check_outputs(repo: Path, overrides: dict[str, Any]) -> None:
    """A finished run's checkout holds the arm's params, or its outputs are not the arm's."""
    held_params = flatten(params.load(repo / "params.yaml"))
    for key, value in overrides.items():
        if (held := held_params[key]) != value:
            raise SystemExit(f"{repo / 'params.yaml'}: {key} = {held!r}, the arm has {value!r}")


def row_of(repo: Path, setting: str, seed: int) -> dict[str, Any]:
    """The row a finished run gives: its scores, its steps, the precision it trained in and
    the seconds its steps took (scoring while training apart)."""
    read = lambda name: json.loads((repo / name).read_text(encoding="utf-8"))  # noqa: E731
    scores, trained, info = read("metrics/eval.json"), read("metrics/train.json"), {}
    if (repo / "reports/train_info.json").is_file():
        info = read("reports/train_info.json")
    ran = {"train_precision": info.get("precision"), "train_s": info.get("train_seconds")}
    return {
        "setting": setting,
        "seed": seed,
        "step": trained["steps"],
        "fid": round(scores["fid"], 2),
        "kid": round(scores["kid"], 5),
        "inception_precision": scores["inception_precision"],
        "inception_recall": scores["inception_recall"],
        "classifier_fid": round(scores["classifier_fid"], 2),
    } | {key: value for key, value in ran.items() if value is not None}


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--arm", action="append", required=True, help="KEY=VALUE words")
    arguments.add_argument("--seeds", type=int, nargs="+", default=[42])
    arguments.add_argument("--repo", type=Path, default=REPO, help="the checkout to run in")
    arguments.add_argument("--outputs", type=Path, help="record this checkout's finished run")
    arguments.add_argument("--commit", help="the code that made --outputs' figures")
    arguments.add_argument("--record", metavar="TABLE", help="append to reports/results/TABLE")
    arguments.add_argument("--note", help="what a reader should know of these rows")
    args = arguments.parse_args()
    if args.outputs and (len(args.arm) != 1 or len(args.seeds) != 1):
        arguments.error("--outputs records one run: one --arm and one seed")
    jobs = [
        (arm, seed, arm_params(args.repo, arm, seed)) for seed in args.seeds for arm in args.arm
    ]
    command = shlex.join(["python", "benchmarks/defaults_against.py", *sys.argv[1:]])
    commit = args.commit or results.git_commit(args.repo)
    rows, stamp = [], datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for arm, seed, overrides in jobs:
        if args.outputs:
            check_outputs(args.outputs, overrides)
            row = row_of(args.outputs, arm, seed)
        else:
            try:
                name = experiment_name(arm, seed, stamp)
                if not run_preset(args.repo, "none", name, overrides):
                    raise SystemExit(f"--arm {arm!r}, seed {seed}: `dvc exp run` failed (above)")
                row = row_of(args.repo, arm, seed)
            finally:
                restore_workspace(args.repo)
        rows.append(row | ({"note": args.note} if args.note else {}))
        if args.record:
            results.record_rows(args.record, COLUMNS, rows[-1:], command, commit=commit)
    here = {"cpu": cpu_model()}  # one machine ran them all
    print(results.render_table({"columns": COLUMNS, "rows": [r | {"machine": here} for r in rows]}))


if __name__ == "__main__":
    main()
