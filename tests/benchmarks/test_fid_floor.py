"""benchmarks/fid_floor.py: Inception features are computed once per chunk of images and read
back on every later run, the fid_stats stage's features are adopted only when they are those
of the reference images, and each row carries FID at each size, FID-infinity and KID."""

import sys

import numpy as np
import pytest
import torch

from ganlab.config import FidSection
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import fid_floor  # benchmarks/ is a folder of scripts, not a package


def pixel_features(images, network, settings, device, desc="inception"):
    """8 features of each image: the means of 8 bands of its pixels (Inception stands in)."""
    x = images.double().flatten(1)
    return torch.stack([part.mean(1) for part in x.chunk(8, dim=1)], dim=1).numpy(), None


@pytest.fixture
def extractor(tmp_path, monkeypatch):
    calls = []

    def counted(images, *args, **kwargs):
        calls.append(len(images))
        return pixel_features(images, *args, **kwargs)

    monkeypatch.setattr(fid_floor, "CHUNK", 4)
    monkeypatch.setattr(fid_floor, "inception_network", lambda settings, device: None)
    monkeypatch.setattr(fid_floor, "inception_features", counted)
    monkeypatch.setattr(fid_floor, "ensure_weights", lambda: {"sha256": "ab" * 32})
    extract = fid_floor.Extractor(FidSection(), tmp_path / "cache")
    return extract, calls


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(seed))


def test_features_are_computed_once_per_chunk_and_read_back_after(extractor):
    extract, calls = extractor
    batch = images(10)
    first = extract(batch, "real")
    assert calls == [4, 4, 2]  # chunks of CHUNK images
    again = extract(batch, "real")
    assert calls == [4, 4, 2]  # nothing computed twice
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, pixel_features(batch, None, None, None)[0])
    extract(torch.cat([batch[:8], images(4, seed=1)]), "more")
    assert calls == [4, 4, 2, 4]  # only the new chunk


def test_the_stages_features_are_adopted_only_when_they_are_the_references(extractor, tmp_path):
    extract, calls = extractor
    reference = images(12)
    known = pixel_features(reference[:10], None, None, None)[0]
    assert extract.adopt(reference, known, tmp_path / "f.npy") == 8  # whole chunks only
    calls.clear()
    extract(reference, "reference")
    assert calls == [4]  # the last chunk; the first two were adopted
    with pytest.raises(SystemExit, match=r"f\.npy: not the features of these images"):
        extract.adopt(images(12, seed=5), known, tmp_path / "f.npy")


def test_a_row_has_fid_at_each_size_fid_infinity_and_kid():
    # 32-d normal features, the scored ones shifted by 1 along one axis: FID is 1 at N = oo
    rng = np.random.default_rng(0)
    real, scored = rng.normal(size=(5000, 32)), rng.normal(size=(2000, 32))
    scored[:, 0] += 1
    row = fid_floor.row("fakes", scored, real, [250, 2000], min_n=250)
    assert row["scored"] == "fakes" and row["reference"] == 5000
    assert row["fid_250"] > row["fid_2000"] > row["fid_infinity"]
    assert row["fid_infinity"] == pytest.approx(1, abs=0.1)
    assert row["curve"][0][0] == 250 and row["curve"][-1][0] == 2000
    assert row["kid"] > 0


def test_the_figure_draws_each_rows_points_and_fit(tmp_path):
    curve = [[2500, 4.0], [5000, 3.0], [10000, 2.5]]
    rows = [
        {
            "scored": "held-out training images",
            "reference": 5000,
            "fid_infinity": 2.0,
            "curve": curve,
        },
        {"scored": "G (fakes)", "reference": 5000, "fid_infinity": 26.0, "curve": curve},
    ]
    fid_floor.draw(rows, tmp_path / "bias.png")
    assert (tmp_path / "bias.png").read_bytes()[:4] == b"\x89PNG"
