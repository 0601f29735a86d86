"""Thin entry points that dvc.yaml calls: parse paths, read params, call the library.

Expected failures (bad params, bad data, an unreachable tracking store, a loss gone
NaN) end the stage with one clear line and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from ganlab.errors import USER_ERRORS, GanlabError


class StageError(GanlabError, RuntimeError):
    """A stage's input is missing or inconsistent."""


def _raise_interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main; turn expected errors into a one-line message and exit code 2."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        main()
    except USER_ERRORS as error:
        print(f"ganlab: error: {error}", file=sys.stderr)
        sys.exit(2)


def parser(description: str) -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(description=description)
    arguments.add_argument("--params", default="params.yaml", help="the pipeline's params file")
    return arguments


def add_generator_arguments(arguments: argparse.ArgumentParser) -> None:
    """The train stage's generator files; params' evaluate.checkpoint picks one."""
    arguments.add_argument("--generator", type=Path, required=True, help="last generator")
    arguments.add_argument(
        "--best-generator", type=Path, required=True, help="best-scored generator"
    )
    arguments.add_argument(
        "--snapshots", type=Path, required=True, help="folder of per-epoch G and D snapshots"
    )
