"""Checkpoints that load without unpickling code (`weights_only=True`) and write atomically."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganlab.io import atomic_path


def to_bytes(state: dict[str, Any]) -> bytes:
    """torch.save's zip, made in memory: saved to a file, the zip's record names would carry
    the random temporary file name, and the same state would give different bytes."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` atomically; the same state always gives the same bytes."""
    data = to_bytes(state)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint of tensors and plain values; a pickle carrying code is refused."""
    return torch.load(path, map_location=map_location, weights_only=True)


def rng_state() -> dict[str, Any]:
    """torch, CUDA, numpy and Python RNG states as tensors and plain values."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [
            np_kind,
            torch.from_numpy(np_keys.astype(np.int64)),
            np_pos,
            np_has_gauss,
            np_gauss,
        ],
        "python": [py_version, list(py_state), py_gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state(
        (np_kind, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss)
    )
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
