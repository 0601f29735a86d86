"""Datasets: download with mirrors and checksums, then decode into uint8 tensors.

Every dataset is a registry row: its original files (name, MD5, official URLs), the
reader of their format, its native image shape and class names. Downloading uses
torchvision's `download_url` (Google Drive links included), with two additions:
directories that already hold the original files (Debian's `dataset-fashion-mnist`
puts them in /usr/share/datasets) are tried first, then extra mirrors from params.yaml.
A user's own image folder is copied into the data root, so DVC versions a snapshot.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision import datasets
from torchvision.datasets.utils import calculate_md5, download_url, extract_archive

from ganlab.config import Config, ConfigError, check_names
from ganlab.data import formats
from ganlab.data.formats import Reader
from ganlab.errors import GanlabError


class DataError(GanlabError, RuntimeError):
    """A dataset file is missing, corrupt or unreadable."""


@dataclass(frozen=True)
class RemoteFile:
    """One original file: its name, MD5 and the official URLs it is published at."""

    name: str
    md5: str | None  # None: the publisher gives none (pix2pix, CycleGAN); the MD5 is reported
    urls: tuple[str, ...]
    extract: bool = False  # unpack (gz, tar.gz, zip) next to it after verifying


@dataclass(frozen=True)
class DatasetInfo:
    """What the rest of the lab needs to know about a dataset."""

    folder: str  # under the data root, holding `raw/`
    image_shape: tuple[int, int, int]  # as the reader returns them
    class_names: tuple[str, ...]  # empty: read from the data (a user's image folder)
    files: tuple[RemoteFile, ...]
    read: Reader
    # file -> MD5 of a known-good repack (same images, other gzip bytes) besides the official file
    repack_md5: Mapping[str, str] = field(default_factory=dict)
    user_folder: bool = False  # images come from download.image_folder, not from the web
    paired: bool = False  # two classes, the i-th image of class 0 paired with the i-th of class 1

    @property
    def resources(self) -> list[tuple[str, str]]:
        """(file name, MD5) of every original file."""
        return [(f.name, f.md5) for f in self.files]

    def accepted_md5(
        self, filename: str, official: str | None, trusted: Sequence[str] = ()
    ) -> set[str] | None:
        """The MD5s a file may have: the official one, a known repack's and the user's `trusted`
        ones; None when there is nothing to check (no published checksum, none trusted)."""
        if official is None and not trusted:
            return None
        repack = [self.repack_md5[filename]] if filename in self.repack_md5 else []
        return {*([official] if official else []), *repack, *trusted}


def mnist_family(
    torchvision_class: type[datasets.MNIST],
    folder: str,
    repack_md5: Mapping[str, str] | None = None,
) -> DatasetInfo:
    """A dataset in MNIST's IDX format, with torchvision's official mirrors and MD5s."""
    files = tuple(
        RemoteFile(name, md5, tuple(m + name for m in torchvision_class.mirrors), extract=True)
        for name, md5 in torchvision_class.resources
    )
    classes = tuple(torchvision_class.classes)
    reader = formats.idx_reader()
    return DatasetInfo(folder, (1, 28, 28), classes, files, reader, repack_md5 or {})


# Debian's dataset-fashion-mnist (0.0~git20200523.55506a9-1) recompresses the original
# files without their gzip file-name field; apt has verified them against Debian's
# signed archive, so their MD5s are accepted next to the official ones.
DEBIAN_FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "cf8536b0aa1a6ac5fa3f23001093305c",
    "train-labels-idx1-ubyte.gz": "10bea18fdb374794d4bb42e356e600c9",
    "t10k-images-idx3-ubyte.gz": "f78720b4224f21cce2f2ccf2d7a94c9a",
    "t10k-labels-idx1-ubyte.gz": "0d30e22e447f3c33dab9ed536400ac01",
}

SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
GOOGLE_DRIVE = "https://drive.google.com/file/d/{}/view"
# The download scripts of pytorch-CycleGAN-and-pix2pix (Zhu, Park, Isola et al.) fetch these;
# the authors publish no checksums, so the MD5 of what arrived is printed (and DVC then
# versions data/raw by its hash).
CYCLEGAN_URLS = (
    "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{}.zip",
    "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/{}.zip",
)
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{}.tar.gz"
CYCLEGAN_SETS = {  # name -> (domain A, domain B)
    "horse2zebra": ("horse", "zebra"),
    "apple2orange": ("apple", "orange"),
    "summer2winter_yosemite": ("summer", "winter"),
    "monet2photo": ("monet", "photo"),
}
PIX2PIX_SETS = {  # name -> (A half, B half)
    "facades": ("photo", "labels"),
    "maps": ("satellite", "map"),
    "cityscapes": ("photo", "labels"),
}


def cyclegan_set(name: str) -> DatasetInfo:
    """An official CycleGAN dataset: unpaired domains A and B as classes 0 and 1."""
    side = formats.TRANSLATION_SIZE
    remote = RemoteFile(f"{name}.zip", None, tuple(url.format(name) for url in CYCLEGAN_URLS), True)
    return DatasetInfo(
        f"CycleGAN/{name}",
        (3, side, side),
        CYCLEGAN_SETS[name],
        (remote,),
        formats.unpaired_reader(name),
    )


def pix2pix_set(name: str) -> DatasetInfo:
    """An official pix2pix dataset: the A and B halves of each image as paired classes 0 and 1."""
    side = formats.TRANSLATION_SIZE
    remote = RemoteFile(f"{name}.tar.gz", None, (PIX2PIX_URL.format(name),), True)
    return DatasetInfo(
        f"pix2pix/{name}",
        (3, side, side),
        PIX2PIX_SETS[name],
        (remote,),
        formats.paired_reader(name),
        paired=True,
    )


CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": mnist_family(datasets.FashionMNIST, "FashionMNIST", DEBIAN_FASHION_MNIST_MD5),
    "mnist": mnist_family(datasets.MNIST, "MNIST"),
    "svhn": DatasetInfo(
        "SVHN",
        (3, 32, 32),
        tuple(str(digit) for digit in range(10)),
        tuple(
            RemoteFile(name, md5, (SVHN_URL + name,))
            for _, name, md5 in (datasets.SVHN.split_list[s] for s in ("train", "test"))
        ),
        formats.read_svhn,
    ),
    "cifar10": DatasetInfo(
        "CIFAR10",
        (3, 32, 32),
        CIFAR10_CLASSES,
        (RemoteFile(datasets.CIFAR10.filename, datasets.CIFAR10.tgz_md5, (CIFAR10_URL,), True),),
        formats.read_cifar10,
    ),
    "celeba": DatasetInfo(
        "CelebA",
        (3, formats.CELEBA_SIZE, formats.CELEBA_SIZE),
        ("face",),
        tuple(
            RemoteFile(name, md5, (GOOGLE_DRIVE.format(file_id),), name.endswith(".zip"))
            for file_id, md5, name in datasets.CelebA.file_list
            if name in ("img_align_celeba.zip", "list_eval_partition.txt")
        ),
        formats.read_celeba,
    ),
    "image_folder": DatasetInfo(
        "ImageFolder",
        (3, formats.FOLDER_SIZE, formats.FOLDER_SIZE),
        (),
        (),
        formats.read_folder,
        user_folder=True,
    ),
    **{f"cyclegan_{name}": cyclegan_set(name) for name in CYCLEGAN_SETS},
    **{f"pix2pix_{name}": pix2pix_set(name) for name in PIX2PIX_SETS},
}


def check_params(config: Config) -> None:
    """params.yaml's dataset is a row of DATASETS, and a user folder is named where one is read."""
    check_names(config, {"dataset": DATASETS})
    if DATASETS[config.dataset].user_folder and not config.download.image_folder:
        raise ConfigError(
            "params.yaml: dataset = 'image_folder' needs download.image_folder: expected the "
            "path of a folder of images (one subfolder per class, or just images)"
        )


def _fetch_file(
    remote: RemoteFile,
    accepted: set[str] | None,
    dest: Path,
    mirrors: Sequence[str],
    local_dirs: Sequence[str],
) -> str:
    """Put one verified original file into `dest`; return where it came from."""
    filename, failures = remote.name, []
    for local_dir in local_dirs:
        candidate = Path(local_dir) / filename
        if not candidate.is_file():
            continue
        actual = calculate_md5(str(candidate))
        if accepted is None or actual in accepted:
            shutil.copyfile(candidate, dest / filename)
            return _source(str(candidate), actual, accepted)
        failures.append(f"{candidate}: MD5 {actual} does not match")
    for url in [m.rstrip("/") + "/" + filename for m in mirrors] + list(remote.urls):
        try:
            download_url(url, str(dest), filename=filename)
        except Exception as error:  # torchvision raises URLError, RuntimeError, OSError...
            failures.append(f"{url}: {type(error).__name__}: {error}")
            (dest / filename).unlink(missing_ok=True)
            continue
        actual = calculate_md5(str(dest / filename))
        if accepted is None or actual in accepted:
            return _source(url, actual, accepted)
        failures.append(f"{url}: MD5 {actual} does not match")
        (dest / filename).unlink()
    tried = "\n  ".join(failures) or "no local directory holds it and no mirror is configured"
    raise DataError(
        f"could not get a copy of {filename} (expected MD5 {remote.md5 or 'unpublished'}); "
        f"tried:\n  {tried}"
    )


def _source(where: str, md5: str, accepted: set[str] | None) -> str:
    return where if accepted is not None else f"{where} (MD5 {md5}; no published checksum)"


def _copy_user_folder(source: str | None, staging: Path) -> dict[str, str]:
    """A snapshot of the user's image folder, so DVC hashes and versions what was trained on."""
    if not source or not Path(source).is_dir():
        raise DataError(
            f"download.image_folder = {source!r}: expected a folder of images (one subfolder "
            "per class, or just images) for dataset: image_folder"
        )
    shutil.copytree(source, staging, dirs_exist_ok=True)
    n = len(formats.folder_images(staging))
    if n < formats.FOLDER_TEST_EVERY:
        raise DataError(
            f"download.image_folder = {source!r} holds {n} images "
            f"({', '.join(formats.IMAGE_SUFFIXES)}): expected at least {formats.FOLDER_TEST_EVERY}"
        )
    return {f"{n} images": str(source)}


def download(
    name: str,
    root: str | Path,
    mirrors: Sequence[str] = (),
    local_dirs: Sequence[str] = (),
    image_folder: str | None = None,
    trusted_md5: Sequence[str] = (),
) -> dict[str, str]:
    """Fetch, verify and extract a dataset's original files into `root/<folder>/raw`.

    Extra `mirrors` are tried before the dataset's official URLs; a file may have its
    official MD5 or one of `trusted_md5` (download.trusted_md5). The raw folder is
    built in a temporary directory and moved into place whole, so an interrupted
    download never leaves a partial dataset behind. Returns file -> source.
    """
    info = DATASETS[name]
    raw = Path(root) / info.folder / "raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    sources: dict[str, str] = {}
    staging = Path(tempfile.mkdtemp(dir=raw.parent, prefix=".download-"))
    try:
        if info.user_folder:
            sources = _copy_user_folder(image_folder, staging)
        for remote in info.files:
            sources[remote.name] = _fetch_file(
                remote,
                info.accepted_md5(remote.name, remote.md5, trusted_md5),
                staging,
                mirrors,
                local_dirs,
            )
            if remote.extract:
                extract_archive(str(staging / remote.name), str(staging))
        if raw.exists():
            shutil.rmtree(raw)
        staging.rename(raw)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sources


def verify(name: str, root: str | Path, trusted_md5: Sequence[str] = ()) -> None:
    """Check every original file under root against its MD5 (or one of `trusted_md5`);
    DataError names the first bad one."""
    info = DATASETS[name]
    raw = Path(root) / info.folder / "raw"
    if not raw.is_dir():
        raise DataError(f"{raw} is missing; run the download stage")
    for filename, md5 in info.resources:
        path = raw / filename
        if not path.is_file():
            raise DataError(
                f"{path} is missing (expected MD5 {md5 or 'unpublished'}); run the download stage"
            )
        accepted = info.accepted_md5(filename, md5, trusted_md5)
        if accepted is None:  # no published checksum: DVC's hash of data/raw guards it
            continue
        actual = calculate_md5(str(path))
        if actual not in accepted:
            expected = " or ".join(sorted(accepted))
            raise DataError(f"{path} is corrupt: MD5 {actual}, expected {expected}")


def class_names(name: str, root: str | Path) -> tuple[str, ...]:
    """The dataset's classes; a user's folder has one per subfolder (or a single one)."""
    info = DATASETS[name]
    return info.class_names or formats.folder_classes(Path(root) / info.folder / "raw")


def resize(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """uint8 N x C x H x W -> N x C x size x size, antialiased bilinear, in chunks."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty(len(images), images.shape[1], size, size, dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk].float()
        resized = F.interpolate(batch, (size, size), mode="bilinear", antialias=True)
        out[start : start + chunk] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out


def load_images(
    name: str,
    root: str | Path,
    train: bool = True,
    limit: int | None = None,
    size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a split once into (uint8 images N x C x H x W, int64 labels N).

    `size` resizes to size x size (None keeps the dataset's own size)."""
    info = DATASETS[name]
    raw = Path(root) / info.folder / "raw"
    try:
        images, labels = info.read(raw, train)
    except (OSError, ValueError, EOFError) as error:  # FormatError is a ValueError
        raise DataError(
            f"{name} could not be read from {raw}: {error}; run the download stage"
        ) from error
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if size is not None:
        images = resize(images, size)
    return images.contiguous(), labels.long()


def load_training_set(config: Config, root: str | Path) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(images, labels, number of classes) the train stage trains on: the verified split,
    train.subset of it, at image_size, at least a batch of it."""
    verify(config.dataset, root, config.download.trusted_md5)
    images, labels = load_images(
        config.dataset, root, train=True, limit=config.train.subset, size=config.image_size
    )
    if len(images) < config.batch_size:
        raise DataError(
            f"{len(images)} training images but batch_size = {config.batch_size}: "
            "lower batch_size or raise train.subset"
        )
    return images, labels, len(class_names(config.dataset, root))


REFERENCE_SEED = 0  # one fixed draw of the training images decides the reference sets
SELECTION_IMAGES = 10_000  # training images the best generator is picked against


def reference_rows(n_images: int, n_fid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows of the FID reference, rows the best generator is selected on): disjoint sets of
    training images, the first n_fid and the next SELECTION_IMAGES (or what is left) of one
    seeded draw. The generator kept for the report is then never picked on the images the
    report scores it against (nor on the test split, which classifier FID reports on)."""
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(REFERENCE_SEED))
    return order[:n_fid], order[n_fid : n_fid + SELECTION_IMAGES]


def digest(images: torch.Tensor) -> str:
    """A short hash of the pixels themselves: the same images give the same digest."""
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:16]


def source_of(name: str, image_folder: str | None = None) -> str:
    """Where a dataset comes from: its first official URL, or the user's folder as a file URL
    (a dataset registered with local files only: its first file's name)."""
    info = DATASETS[name]
    if info.user_folder:
        return Path(image_folder or ".").resolve().as_uri()
    return next(iter(info.files[0].urls), info.files[0].name)
