"""Where the lab keeps shared state, anchored on the repository root.

DVC runs queued experiments in temporary copies under .dvc/tmp/exps and sets
DVC_ROOT to the real repository, so everything shared between runs (the MLflow
store) is resolved from DVC_ROOT when it is set, never from the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The DVC repository the pipeline belongs to (DVC_ROOT, else the nearest .dvc parent)."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".dvc").is_dir():
            return candidate
    return here
