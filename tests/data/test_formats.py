"""SVHN, CIFAR-10, CelebA and image folders: tiny files in their real on-disk formats,
downloaded through the real download code (from an HTTP server on 127.0.0.1) and read back."""

import dataclasses
import hashlib
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import loadmat, savemat

from ganlab.config import ConfigError
from ganlab.data import datasets, formats
from ganlab.training.params import from_mapping
from tests.conftest import tiny_params


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def serve_as(monkeypatch, name: str, folder: Path, url: str) -> None:
    """Point a registry row at the tiny files: their MD5s, official URLs on the local server."""
    info = datasets.DATASETS[name]
    files = tuple(
        dataclasses.replace(f, md5=md5(folder / f.name), urls=(url + f.name,)) for f in info.files
    )
    monkeypatch.setitem(datasets.DATASETS, name, dataclasses.replace(info, files=files))


def test_svhn_mat_files(served, tmp_path, monkeypatch):
    folder, url = served
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 4)):
        images = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        digits = np.array([10, 1, 2, 3, 4, 5][:n], dtype=np.uint8).reshape(n, 1)  # 10 is digit 0
        savemat(folder / f"{split}_32x32.mat", {"X": images, "y": digits})
    serve_as(monkeypatch, "svhn", folder, url)
    sources = datasets.download("svhn", tmp_path / "data")
    assert all(source.startswith(url) for source in sources.values())
    datasets.verify("svhn", tmp_path / "data")
    images, labels = datasets.load_images("svhn", tmp_path / "data", train=True)
    assert images.shape == (6, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 1, 2, 3, 4, 5]
    original = loadmat(folder / "train_32x32.mat")["X"][:, :, :, 1]
    assert np.array_equal(images[1].permute(1, 2, 0).numpy(), original)  # pixels untouched


def write_cifar10(folder: Path, per_batch: int = 3) -> Path:
    """cifar-10-python.tar.gz with the real layout: pickled dicts of a uint8 array and labels."""
    tar_path = folder / "cifar-10-python.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for i, name in enumerate([*formats.CIFAR10_TRAIN, "test_batch"]):
            batch = {
                "batch_label": f"batch {i}",
                "labels": [(i + j) % 10 for j in range(per_batch)],
                "data": np.full((per_batch, 3072), i, dtype=np.uint8),
                "filenames": [f"img_{i}_{j}.png" for j in range(per_batch)],
            }
            payload = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return tar_path


def test_cifar10_batches_are_read_without_general_unpickling(served, tmp_path, monkeypatch):
    folder, url = served
    write_cifar10(folder)
    serve_as(monkeypatch, "cifar10", folder, url)
    datasets.download("cifar10", tmp_path / "data")
    images, _ = datasets.load_images("cifar10", tmp_path / "data", train=True)
    assert images.shape == (15, 3, 32, 32)
    assert images[:3].unique().tolist() == [0] and images[-1].unique().tolist() == [4]
    test_images, test_labels = datasets.load_images("cifar10", tmp_path / "data", train=False)
    assert test_images.shape == (3, 3, 32, 32) and test_labels.tolist() == [5, 6, 7]


class RunsACommand:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_tampered_cifar_batch_is_refused_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    batches = tmp_path / "raw" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    evil = {"data": np.zeros((1, 3072), np.uint8), "labels": [RunsACommand()]}
    for name in (*formats.CIFAR10_TRAIN, "test_batch"):
        (batches / name).write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(formats.FormatError, match=r"refusing to load (posix|os)\.system"):
        formats.read_cifar10(tmp_path / "raw", train=True)
    assert not (tmp_path / "pwned").exists()


def test_celeba_zip_and_split_file(served, tmp_path, monkeypatch):
    folder, url = served
    with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as archive:
        for i in range(1, 6):
            image = Image.new("RGB", (178, 218), (40 * i, 0, 0))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=95)
            archive.writestr(f"img_align_celeba/{i:06d}.jpg", buffer.getvalue())
    (folder / "list_eval_partition.txt").write_text(
        "000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n000005.jpg 0\n"
    )
    serve_as(monkeypatch, "celeba", folder, url)
    datasets.download("celeba", tmp_path / "data")
    images, labels = datasets.load_images("celeba", tmp_path / "data", train=True)
    assert images.shape == (3, 3, 64, 64) and labels.tolist() == [0, 0, 0]
    assert abs(images[2, 0].float().mean().item() - 200) < 3  # the 5th image, red 200
    test_images, _ = datasets.load_images("celeba", tmp_path / "data", train=False)
    assert test_images.shape == (1, 3, 64, 64)


def test_celeba_split_file_with_a_bad_line_names_the_line(tmp_path):
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg train\n")
    with pytest.raises(formats.FormatError, match=r"list_eval_partition\.txt:2"):
        formats.read_celeba(tmp_path, train=True)


def write_folder(root: Path, per_class: int = 10) -> Path:
    for label, (name, colour) in enumerate((("cats", (255, 0, 0)), ("dogs", (0, 0, 255)))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (80 + label * 20, 60), colour).save(root / name / f"{i:02d}.png")
    return root


def test_image_folder_is_copied_split_and_labelled_by_subfolder(tmp_path):
    source = write_folder(tmp_path / "mine")
    root = tmp_path / "data"
    sources = datasets.download("image_folder", root, image_folder=str(source))
    assert sources == {"20 images": str(source)}
    assert datasets.class_names("image_folder", root) == ("cats", "dogs")
    images, labels = datasets.load_images("image_folder", root, train=True)
    test_images, test_labels = datasets.load_images("image_folder", root, train=False)
    assert images.shape == (18, 3, 64, 64) and test_images.shape == (2, 3, 64, 64)
    assert labels.tolist() == [0] * 9 + [1] * 9 and test_labels.tolist() == [0, 1]
    assert images[0, :, 32, 32].tolist() == [255, 0, 0]
    small, _ = datasets.load_images("image_folder", root, train=True, size=32)
    assert small.shape == (18, 3, 32, 32) and small[0, :, 5, 5].tolist() == [255, 0, 0]


def test_image_folder_needs_its_path_and_enough_images(tmp_path):
    with pytest.raises(ConfigError, match=r"download\.image_folder"):
        from_mapping(tiny_params(dataset="image_folder"))
    with pytest.raises(datasets.DataError, match=r"download.image_folder = '.*nowhere'"):
        datasets.download("image_folder", tmp_path / "d", image_folder=str(tmp_path / "nowhere"))
    few = tmp_path / "few"
    few.mkdir()
    Image.new("RGB", (8, 8)).save(few / "one.png")
    with pytest.raises(datasets.DataError, match=r"holds 1 images.*at least 10"):
        datasets.download("image_folder", tmp_path / "d", image_folder=str(few))


def test_image_size_must_be_one_dcgan_builds():
    assert from_mapping(tiny_params(image_size=64)).image_size == 64
    with pytest.raises(ConfigError, match=r"image_size = 48.*\[28, 32, 64\]"):
        from_mapping(tiny_params(image_size=48))


def test_every_registered_dataset_has_official_urls_and_md5s():
    unpublished = ("cyclegan_", "pix2pix_")  # their authors publish no checksums
    for name, info in datasets.DATASETS.items():
        if info.user_folder:
            continue
        assert info.files, name
        for remote in info.files:
            assert remote.urls, (name, remote.name)
            if name.startswith(unpublished):
                assert remote.md5 is None
            else:
                assert len(remote.md5) == 32 and int(remote.md5, 16) >= 0, (name, remote.name)
            assert all(u.startswith(("http://", "https://")) for u in remote.urls)


def test_the_fashion_mnist_checksums_accept_the_real_files_and_nothing_else(tmp_path: Path):
    """Debian recompressed the original .gz files: the registry accepts exactly those bytes
    (by their own MD5) besides the publisher's, and a changed byte is refused."""
    info = datasets.DATASETS["fashion_mnist"]
    local = Path("/usr/share/datasets/fashion-mnist")
    for remote in info.files:
        accepted = info.accepted_md5(remote.name, remote.md5)
        assert md5(local / remote.name) in accepted, remote.name
        tampered = tmp_path / remote.name
        data = bytearray((local / remote.name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        tampered.write_bytes(bytes(data))
        assert md5(tampered) not in accepted
