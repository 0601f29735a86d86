import functools
import gzip
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from ganlab.data import datasets


def test_download_from_local_dir_verifies_and_extracts(tiny_mirror: Path, tmp_path: Path):
    root = tmp_path / "data"
    sources = datasets.download("tiny", root, local_dirs=[str(tiny_mirror)])
    raw = root / "TinyMNIST" / "raw"
    assert set(sources) == {name for name, _ in datasets.DATASETS["tiny"].resources}
    assert all(source.startswith(str(tiny_mirror)) for source in sources.values())
    assert (raw / "train-images-idx3-ubyte").is_file()  # extracted for torchvision
    datasets.verify("tiny", root)


@pytest.fixture
def http_mirror(tiny_mirror: Path):
    """The tiny mirror folder served over HTTP on 127.0.0.1, for torchvision's download code."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tiny_mirror))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_falls_back_to_mirrors_in_order(http_mirror: str, tmp_path: Path):
    dead = "http://127.0.0.1:9/"
    sources = datasets.download("tiny", tmp_path / "data", mirrors=[dead, http_mirror])
    assert all(source.startswith(http_mirror) for source in sources.values())
    datasets.verify("tiny", tmp_path / "data")


def test_a_mirror_serving_a_corrupt_file_is_rejected(
    http_mirror: str, tiny_mirror: Path, tmp_path: Path
):
    (tiny_mirror / "train-labels-idx1-ubyte.gz").write_bytes(b"not the labels")
    with pytest.raises(
        datasets.DataError, match=r"train-labels-idx1-ubyte\.gz.*MD5 .* does not match"
    ):
        datasets.download("tiny", tmp_path / "data", mirrors=[http_mirror])


def test_corrupt_file_names_the_file_and_expected_checksum(tiny_mirror: Path, tmp_path: Path):
    target = tiny_mirror / "train-images-idx3-ubyte.gz"
    payload = bytearray(target.read_bytes())
    payload[-5] ^= 0xFF
    target.write_bytes(bytes(payload))
    expected = dict(datasets.DATASETS["tiny"].resources)["train-images-idx3-ubyte.gz"]
    root = tmp_path / "data"
    with pytest.raises(datasets.DataError) as error:
        datasets.download("tiny", root, local_dirs=[str(tiny_mirror)])
    assert "train-images-idx3-ubyte.gz" in str(error.value)
    assert expected in str(error.value)
    assert not (root / "TinyMNIST" / "raw").exists()  # nothing half-downloaded is left


def test_a_failed_download_leaves_an_existing_dataset_untouched(tiny_root: Path, tiny_mirror: Path):
    (tiny_mirror / "t10k-labels-idx1-ubyte.gz").unlink()
    before = sorted(p.name for p in (tiny_root / "TinyMNIST" / "raw").iterdir())
    with pytest.raises(datasets.DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        datasets.download("tiny", tiny_root, local_dirs=[str(tiny_mirror)])
    assert sorted(p.name for p in (tiny_root / "TinyMNIST" / "raw").iterdir()) == before
    datasets.verify("tiny", tiny_root)


def test_a_trusted_md5_admits_a_repacked_copy_and_nothing_else(tiny_mirror: Path, tmp_path: Path):
    """download.trusted_md5: a copy with other bytes (a site's repack) is accepted only by its
    own MD5, by download and by every later verify; another file is still refused."""
    target = tiny_mirror / "t10k-labels-idx1-ubyte.gz"
    repacked = gzip.compress(gzip.decompress(target.read_bytes()), mtime=1)
    target.write_bytes(repacked)
    trusted = [hashlib.md5(repacked).hexdigest()]
    root = tmp_path / "data"
    with pytest.raises(datasets.DataError, match=r"t10k-labels-idx1-ubyte\.gz.*does not match"):
        datasets.download("tiny", root, local_dirs=[str(tiny_mirror)])
    datasets.download("tiny", root, local_dirs=[str(tiny_mirror)], trusted_md5=trusted)
    datasets.verify("tiny", root, trusted)
    with pytest.raises(datasets.DataError, match=r"t10k-labels-idx1-ubyte\.gz is corrupt"):
        datasets.verify("tiny", root)  # without it, the repack is not the official file
    target.write_bytes(repacked + b"\0")
    with pytest.raises(datasets.DataError, match="does not match"):
        datasets.download(
            "tiny", tmp_path / "other", local_dirs=[str(tiny_mirror)], trusted_md5=trusted
        )


def test_verify_detects_a_flipped_byte_after_download(tiny_root: Path):
    path = tiny_root / "TinyMNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    payload = bytearray(path.read_bytes())
    payload[20] ^= 0x01
    path.write_bytes(bytes(payload))
    with pytest.raises(datasets.DataError, match=r"train-labels-idx1-ubyte\.gz is corrupt"):
        datasets.verify("tiny", tiny_root)


def test_load_images_gives_uint8_nchw_and_labels(tiny_root: Path):
    images, labels = datasets.load_images("tiny", tiny_root, train=True)
    assert images.shape == (96, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (96,) and labels.dtype == torch.int64
    raw = gzip.decompress((tiny_root / "TinyMNIST/raw/train-images-idx3-ubyte.gz").read_bytes())
    assert images[0, 0].flatten().tolist() == list(raw[16 : 16 + 784])
    limited, _ = datasets.load_images("tiny", tiny_root, train=False, limit=10)
    assert limited.shape[0] == 10


def test_loading_before_download_says_to_run_download(tiny_mirror: Path, tmp_path: Path):
    with pytest.raises(datasets.DataError, match="run the download stage"):
        datasets.load_images("tiny", tmp_path / "empty")


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_debian_fashion_mnist_is_accepted(tmp_path: Path):
    sources = datasets.download(
        "fashion_mnist", tmp_path, local_dirs=["/usr/share/datasets/fashion-mnist"]
    )
    assert len(sources) == 4
    images, labels = datasets.load_images("fashion_mnist", tmp_path, train=False)
    assert images.shape == (10000, 1, 28, 28)
    assert torch.bincount(labels).tolist() == [1000] * 10
