"""Readers for the datasets' original on-disk formats, each -> (uint8 N x C x H x W, int64 N).

Every reader takes the folder holding the original (extracted) files and the split.
None of them unpickles arbitrary objects: CIFAR's python batches go through an
unpickler that only rebuilds numpy arrays, and everything else is plain binary.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

Reader = Callable[[Path, bool], tuple[torch.Tensor, torch.Tensor]]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
FOLDER_SIZE = 64  # images of a user's folder are centre-cropped and resized to this side
FOLDER_TEST_EVERY = 10  # every 10th image of a folder (sorted) is its test split


class FormatError(ValueError):
    """A file is not in the format its dataset promises."""


def idx_reader(prefix: tuple[str, str] = ("train", "t10k")) -> Reader:
    """MNIST's IDX files (MNIST, Fashion-MNIST), read by torchvision's parser."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    def read(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        split = prefix[0] if train else prefix[1]
        images = read_image_file(str(folder / f"{split}-images-idx3-ubyte"))
        labels = read_label_file(str(folder / f"{split}-labels-idx1-ubyte"))
        return images.unsqueeze(1).contiguous(), labels.long()

    return read


def read_svhn(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """SVHN's MATLAB files: X is 32 x 32 x 3 x N, y holds 1..10 with 10 meaning the digit 0."""
    from scipy.io import loadmat

    path = folder / ("train_32x32.mat" if train else "test_32x32.mat")
    mat = loadmat(str(path))
    if "X" not in mat or "y" not in mat:
        raise FormatError(f"{path}: expected the variables X and y of SVHN's format")
    images = torch.from_numpy(np.ascontiguousarray(mat["X"].transpose(3, 2, 0, 1)))
    labels = torch.from_numpy(mat["y"].astype(np.int64).reshape(-1) % 10)
    return images.to(torch.uint8), labels


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and builtins data, and refuses every other global.

    CIFAR's batches are pickled dicts of numpy arrays and lists; a tampered file that
    names any other callable (os.system, ...) raises instead of running it."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles from Python 3 store bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def load_numpy_pickle(path: Path) -> object:
    """Unpickle a data file that may only hold numpy arrays, lists, dicts, numbers, strings."""
    data = path.read_bytes()
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as error:
        raise FormatError(f"{path}: {error}") from error


CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def read_cifar10(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10's python batches: 'data' N x 3072 uint8 (R, G, B planes), 'labels' N ints."""
    images, labels = [], []
    for name in CIFAR10_TRAIN if train else ("test_batch",):
        batch = load_numpy_pickle(folder / "cifar-10-batches-py" / name)
        if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
            raise FormatError(f"{folder / name}: expected a dict with 'data' and 'labels'")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch["labels"], dtype=np.int64))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def square_resized(image: Image.Image, size: int) -> np.ndarray:
    """Centre-crop to a square and resize (antialiased) to size x size RGB: C x H x W uint8."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.convert("RGB").crop((left, top, left + side, top + side))
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC)).transpose(2, 0, 1)


def _decode_all(paths: list[Path], size: int, desc: str) -> torch.Tensor:
    images = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", dynamic_ncols=True)):
        with Image.open(path) as image:
            images[i] = square_resized(image, size)
    return torch.from_numpy(images)


CELEBA_SIZE = 64


def read_celeba(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """CelebA aligned faces, centre-cropped to 178 x 178 and resized to 64 x 64, as in DCGAN.

    The split comes from list_eval_partition.txt (0 train, 1 validation, 2 test); the
    one class is 'face'."""
    partition = folder / "list_eval_partition.txt"
    wanted = "0" if train else "2"
    names = []
    for line_number, line in enumerate(partition.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise FormatError(f"{partition}:{line_number}: expected '<image>.jpg <0|1|2>'")
        if fields[1] == wanted:
            names.append(fields[0])
    paths = [folder / "img_align_celeba" / name for name in names]
    images = _decode_all(paths, CELEBA_SIZE, "celeba")
    return images, torch.zeros(len(paths), dtype=torch.long)


def folder_classes(folder: Path) -> tuple[str, ...]:
    """A user's image folder: one class per subfolder (ImageFolder's layout), or one class."""
    subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir())
    return tuple(subfolders) or ("images",)


def folder_images(folder: Path) -> list[tuple[Path, int]]:
    classes = folder_classes(folder)
    roots = [folder / name for name in classes] if (folder / classes[0]).is_dir() else [folder]
    found = []
    for label, root in enumerate(roots):
        found += [
            (path, label)
            for path in sorted(root.rglob("*"))
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
        ]
    return found


def read_folder(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A user's images, centre-cropped and resized to 64 x 64 RGB; every 10th is held out."""
    found = folder_images(folder)
    if len(found) < FOLDER_TEST_EVERY:
        raise FormatError(
            f"{folder} holds {len(found)} images ({', '.join(IMAGE_SUFFIXES)}): expected at "
            f"least {FOLDER_TEST_EVERY}"
        )
    chosen = [item for i, item in enumerate(found) if (i % FOLDER_TEST_EVERY == 0) != train]
    images = _decode_all([path for path, _ in chosen], FOLDER_SIZE, "images")
    return images, torch.tensor([label for _, label in chosen], dtype=torch.long)


TRANSLATION_SIZE = 256  # the side of the official pix2pix and CycleGAN images


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FormatError(f"{folder} is missing: expected a folder of images")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FormatError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return paths


def unpaired_reader(archive_folder: str) -> Reader:
    """CycleGAN's layout: <name>/trainA, trainB, testA, testB; domain A is class 0, B class 1."""

    def read(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        split = "train" if train else "test"
        root = folder / archive_folder
        parts = [
            _decode_all(_images_in(root / f"{split}{domain}"), TRANSLATION_SIZE, f"{split}{domain}")
            for domain in ("A", "B")
        ]
        labels = torch.cat(
            [torch.full((len(part),), i, dtype=torch.long) for i, part in enumerate(parts)]
        )
        return torch.cat(parts), labels

    return read


def paired_reader(archive_folder: str) -> Reader:
    """pix2pix's layout: <name>/train, val, test of side-by-side A|B images.

    Returns every A half (class 0) and then every B half (class 1) in the same order,
    so the i-th A image and the i-th B image are a pair. Sets without a test folder
    (cityscapes, maps) use val as their test split, as pix2pix does."""

    def read(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        root = folder / archive_folder
        split = "train" if train else ("test" if (root / "test").is_dir() else "val")
        paths = _images_in(root / split)
        halves = np.empty((2, len(paths), 3, TRANSLATION_SIZE, TRANSLATION_SIZE), dtype=np.uint8)
        for i, path in enumerate(tqdm(paths, desc=split, unit="pair", dynamic_ncols=True)):
            with Image.open(path) as image:
                if image.width < 2 * image.height - 1 or image.width > 2 * image.height + 1:
                    raise FormatError(
                        f"{path} is {image.width} x {image.height}: expected two square images "
                        "side by side (A | B), as pix2pix's datasets hold them"
                    )
                half = image.width // 2
                halves[0, i] = square_resized(
                    image.crop((0, 0, half, image.height)), TRANSLATION_SIZE
                )
                halves[1, i] = square_resized(
                    image.crop((half, 0, 2 * half, image.height)), TRANSLATION_SIZE
                )
        labels = torch.arange(2).repeat_interleave(len(paths))
        return torch.from_numpy(halves.reshape(-1, 3, TRANSLATION_SIZE, TRANSLATION_SIZE)), labels

    return read
