"""Tiny real-format data and tiny configs, so tests run the real code in seconds on a CPU."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torchvision import datasets as torchvision_datasets

from ganlab.config import Config, with_overrides
from ganlab.data import datasets
from ganlab.device import Precision
from ganlab.models import ModelSpec
from ganlab.training.gan import TrainResult, model_spec, train
from ganlab.training.params import from_mapping

REPO = Path(__file__).resolve().parents[1]
FP32 = Precision("fp32", None)  # exact arithmetic: tests compare weights and losses bit for bit


def train_on_cpu(
    config: Config,
    images: torch.Tensor,
    checkpoint_path: Path,
    labels: torch.Tensor | None = None,
    **options: Any,
) -> TrainResult:
    """The noise-to-image trainer as most tests run it: CPU, exact fp32, one run id."""
    return train(
        config,
        images,
        labels,
        device=torch.device("cpu"),
        precision=FP32,
        checkpoint_path=checkpoint_path,
        run_id="run",
        **options,
    )


def tiny_images(n: int = 64) -> torch.Tensor:
    """n 28x28 uint8 images of a bar at 8 heights: structure a GAN picks up in a few steps."""
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i in range(n):
        images[i, 0, 6 + i % 8 : 14 + i % 8, 6:22] = 255
    return images


def write_idx_gz(path: Path, array: np.ndarray) -> str:
    """Write an IDX file (the MNIST on-disk format), gzipped; return its MD5."""
    type_code = {np.uint8: 0x08}[array.dtype.type]
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = gzip.compress(header + array.astype(">u1").tobytes(), mtime=0)
    path.write_bytes(payload)
    return hashlib.md5(payload).hexdigest()


@pytest.fixture
def tiny_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding a tiny MNIST-format dataset, registered as the `tiny` dataset."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    rng = np.random.default_rng(0)
    splits = {"train": 96, "t10k": 32}
    resources = []
    for split, n in splits.items():
        # Two blobs per image so the data has structure a GAN can start to learn.
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 4 + label : 12 + label, 6:22] = 200 + rng.integers(0, 55)
        resources.append(
            (
                f"{split}-images-idx3-ubyte.gz",
                write_idx_gz(mirror / f"{split}-images-idx3-ubyte.gz", images),
            )
        )
        resources.append(
            (
                f"{split}-labels-idx1-ubyte.gz",
                write_idx_gz(mirror / f"{split}-labels-idx1-ubyte.gz", labels),
            )
        )

    tiny_class = type(
        "TinyMNIST", (torchvision_datasets.MNIST,), {"resources": resources, "mirrors": []}
    )
    info = datasets.mnist_family(tiny_class, "TinyMNIST")
    monkeypatch.setitem(datasets.DATASETS, "tiny", info)
    return mirror


@pytest.fixture
def tiny_root(tmp_path: Path, tiny_mirror: Path) -> Path:
    """The tiny dataset downloaded (from its mirror folder) into a data root."""
    root = tmp_path / "data"
    datasets.download("tiny", root, local_dirs=[str(tiny_mirror)])
    return root


@pytest.fixture
def served(tmp_path: Path):
    """A folder served over HTTP on 127.0.0.1: (folder, base URL)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def tiny_params(**overrides) -> dict:
    params = {
        "dataset": "fashion_mnist",
        "model": "dcgan",
        "batch_size": 16,
        "epochs": 2,
        "ngf": 8,
        "ndf": 8,
        "z_dim": 16,
        "precision": "fp32",
        "train": {"log_every": 2, "checkpoint_every": 3},
        "fid": {"n_real": 32, "n_fake": 32, "batch_size": 16},
        "render": {"n_samples": 16, "nrow": 4},
        "classifier": {"epochs": 1, "batch_size": 64, "subset": 4000},
    }
    params = with_overrides(params, overrides)  # dotted keys and mappings set sections
    # tiny widths and noise only where the model has them (a param without effect is refused)
    unused = {"mlp": ("ngf", "ndf"), "pix2pix": ("z_dim",), "cyclegan": ("z_dim",)}
    for key in unused.get(params["model"], ()):
        if key not in overrides:
            del params[key]
    return params


def tiny_spec(
    z_dim: int = 16, image_shape: tuple[int, int, int] = (1, 28, 28), **overrides: Any
) -> ModelSpec:
    """The ModelSpec that tiny_params' training builds, with `overrides`."""
    spec = model_spec(from_mapping(tiny_params()), image_shape, n_classes=10)
    return dataclasses.replace(spec, z_dim=z_dim, **overrides)


def write_generator_file(path: Path, spec, model: str = "dcgan") -> Path:
    """A generator.pt as the train stage writes it, with untrained weights."""
    from ganlab import checkpoint
    from ganlab.models import build_models

    netG, _ = build_models(model, spec, "dcgan")
    checkpoint.save(
        path,
        {
            "state_dict": netG.state_dict(),
            "model": model,
            "spec": dataclasses.asdict(spec),
            "latent": "normal",
            "precision": "fp32",
        },
    )
    return path


@pytest.fixture
def tiny_config():
    return from_mapping(tiny_params())


@pytest.fixture(autouse=True, scope="session")
def probe_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """precision: auto's probed choices go to a folder of the test session's (stages run as
    subprocesses inherit it), not to the user's cache."""
    folder = tmp_path_factory.mktemp("ganlab-cache")
    os.environ["GANLAB_CACHE"] = str(folder)
    return folder


# The end-to-end modules: each a chain of `dvc` runs on a project its tests share (about ten
# minutes apiece on 2 cores). pytest-xdist (`-n auto --dist loadscope` in pyproject.toml) keeps
# a module on one worker; collected first, they start at once, one on each worker, and the
# rest of the suite fills in around them.
LONGEST_FIRST = ("test_pipeline.py", "test_pipeline_experiments.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)  # stable: order kept


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker (and the stages it launches) gets its share of the
    cores: two workers each running torch on every core would slow both."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture
def cpu() -> torch.device:
    return torch.device("cpu")


# Tests that may skip, by node id prefix, with why. Any other skip fails the run: a skipped
# test is one that didn't run, so a missing install step can't pass CI as green.
ALLOWED_SKIPS: dict[str, str] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    unexpected = [
        report.nodeid
        for report in skipped
        if not any(report.nodeid.startswith(prefix) for prefix in ALLOWED_SKIPS)
    ]
    if reporter is None:
        return
    reporter.ensure_newline()
    reporter.write_sep("-", f"{len(unexpected)} unexpected skips", red=bool(unexpected))
    if unexpected:
        reporter.write_line(
            "not in tests/conftest.py's ALLOWED_SKIPS (scripts/install.sh installs what they "
            f"need): {', '.join(unexpected)}",
            red=True,
        )
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
