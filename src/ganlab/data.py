"""Datasets: download with mirrors and checksums, then load into uint8 tensors.

Downloading goes through torchvision's own code (official mirror lists, MD5 sums,
`download_url`), with two additions: directories that already hold the original
files (Debian's `dataset-fashion-mnist` puts them in /usr/share/datasets) are tried
first, and extra mirrors can be listed in params.yaml.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torchvision import datasets
from torchvision.datasets.utils import calculate_md5, download_url, extract_archive


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or unreadable."""


@dataclass(frozen=True)
class DatasetInfo:
    """What the rest of the lab needs to know about a dataset."""

    torchvision_class: type[datasets.MNIST]
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    # file -> MD5 of a known-good repack (same images, other gzip bytes) besides the official file
    repack_md5: Mapping[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        """The folder torchvision reads under the data root (e.g. FashionMNIST)."""
        return self.torchvision_class.__name__

    @property
    def resources(self) -> list[tuple[str, str]]:
        """(file name, MD5) of every original file."""
        return [(Path(name).name, md5) for name, md5 in self.torchvision_class.resources]

    @property
    def mirrors(self) -> list[str]:
        return list(self.torchvision_class.mirrors)

    def accepted_md5(self, filename: str, official: str) -> set[str]:
        return {official, *([self.repack_md5[filename]] if filename in self.repack_md5 else [])}


# Debian's dataset-fashion-mnist (0.0~git20200523.55506a9-1) recompresses the original
# files without their gzip file-name field; apt has verified them against Debian's
# signed archive, so their MD5s are accepted next to the official ones.
DEBIAN_FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "cf8536b0aa1a6ac5fa3f23001093305c",
    "train-labels-idx1-ubyte.gz": "10bea18fdb374794d4bb42e356e600c9",
    "t10k-images-idx3-ubyte.gz": "f78720b4224f21cce2f2ccf2d7a94c9a",
    "t10k-labels-idx1-ubyte.gz": "0d30e22e447f3c33dab9ed536400ac01",
}

DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        datasets.FashionMNIST,
        (1, 28, 28),
        tuple(datasets.FashionMNIST.classes),
        DEBIAN_FASHION_MNIST_MD5,
    ),
    "mnist": DatasetInfo(datasets.MNIST, (1, 28, 28), tuple(datasets.MNIST.classes)),
}


def _fetch_file(
    filename: str,
    md5: str,
    accepted: set[str],
    dest: Path,
    mirrors: Sequence[str],
    local_dirs: Sequence[str],
) -> str:
    """Put one verified original file into `dest`; return where it came from."""
    failures: list[str] = []
    for local_dir in local_dirs:
        candidate = Path(local_dir) / filename
        if not candidate.is_file():
            continue
        actual = calculate_md5(str(candidate))
        if actual in accepted:
            shutil.copyfile(candidate, dest / filename)
            return str(candidate)
        failures.append(f"{candidate}: MD5 {actual} does not match")
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            download_url(url, str(dest), filename=filename)
        except Exception as error:  # torchvision raises URLError, RuntimeError, OSError...
            failures.append(f"{url}: {type(error).__name__}: {error}")
            (dest / filename).unlink(missing_ok=True)
            continue
        actual = calculate_md5(str(dest / filename))
        if actual in accepted:
            return url
        failures.append(f"{url}: MD5 {actual} does not match")
        (dest / filename).unlink()
    tried = "\n  ".join(failures) or "no local directory holds it and no mirror is configured"
    raise DataError(
        f"could not get a verified copy of {filename} (expected MD5 {md5}); tried:\n  {tried}"
    )


def download(
    name: str, root: str | Path, mirrors: Sequence[str] = (), local_dirs: Sequence[str] = ()
) -> dict[str, str]:
    """Fetch, verify and extract a dataset's original files into torchvision's layout under root.

    Extra `mirrors` are tried before the dataset's official ones. The raw folder is
    built in a temporary directory and moved into place whole, so an interrupted
    download never leaves a partial dataset behind. Returns file -> source.
    """
    info = DATASETS[name]
    raw = Path(root) / info.folder / "raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    sources: dict[str, str] = {}
    staging = Path(tempfile.mkdtemp(dir=raw.parent, prefix=".download-"))
    try:
        for filename, md5 in info.resources:
            sources[filename] = _fetch_file(
                filename,
                md5,
                info.accepted_md5(filename, md5),
                staging,
                [*mirrors, *info.mirrors],
                local_dirs,
            )
            extract_archive(str(staging / filename), str(staging))
        if raw.exists():
            shutil.rmtree(raw)
        staging.rename(raw)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sources


def verify(name: str, root: str | Path) -> None:
    """Check every original file under root against its MD5; DataError names the first bad one."""
    info = DATASETS[name]
    raw = Path(root) / info.folder / "raw"
    for filename, md5 in info.resources:
        path = raw / filename
        if not path.is_file():
            raise DataError(f"{path} is missing (expected MD5 {md5}); run the download stage")
        actual = calculate_md5(str(path))
        if actual not in info.accepted_md5(filename, md5):
            raise DataError(f"{path} is corrupt: MD5 {actual}, expected {md5}")


def load_images(
    name: str, root: str | Path, train: bool = True, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a split once into (uint8 images N x C x H x W, int64 labels N)."""
    info = DATASETS[name]
    try:
        split = info.torchvision_class(str(root), train=train, download=False)
    except RuntimeError as error:
        raise DataError(f"{name} is not under {root}: {error}; run the download stage") from error
    images, labels = split.data, split.targets
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images.unsqueeze(1).contiguous(), labels.long()
