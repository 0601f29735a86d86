import numpy as np
import pytest
import torch

from ganlab import fid, inception


def test_frechet_distance_with_equal_covariances_is_squared_mean_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert fid.frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(
        np.sum((mu1 - mu2) ** 2), rel=1e-6
    )


def test_frechet_distance_of_scaled_isotropic_gaussians():
    # N(0, a I) vs N(0, b I) in d dims: d * (sqrt(a) - sqrt(b))^2
    d, a, b = 5, 4.0, 1.0
    value = fid.frechet_distance(np.zeros(d), a * np.eye(d), np.zeros(d), b * np.eye(d))
    assert value == pytest.approx(d * (2 - 1) ** 2, rel=1e-6)


def test_inception_score_known_answers():
    confident = np.full((100, 10), -30.0)
    confident[np.arange(100), np.arange(100) % 10] = 30.0  # sure of one class, all classes equally
    mean, std = fid.inception_score(confident, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    mean, _ = fid.inception_score(np.zeros((100, 10)), splits=10)  # undecided: IS = 1
    assert mean == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 10"):
        fid.inception_score(np.zeros((5, 10)))


def test_stats_round_trip_in_pytorch_fid_format(tmp_path):
    mu, sigma = np.arange(3.0), np.eye(3)
    path = tmp_path / "stats.npz"
    fid.save_stats(path, mu, sigma)
    with np.load(path) as saved:
        assert sorted(saved.files) == ["mu", "sigma"]  # what `pytorch_fid --save-stats` writes
    loaded_mu, loaded_sigma = fid.load_stats(path)
    assert np.array_equal(loaded_mu, mu) and np.array_equal(loaded_sigma, sigma)


@pytest.mark.slow
def test_offline_weights_match_the_torchscript_inception(tmp_path):
    dest = tmp_path / "pt_inception.pth"
    inception.build_from_torchscript(dest)
    state = torch.load(dest, weights_only=True)
    model = inception.FIDInception(state).eval()
    assert not model.has_classifier  # so Inception Score is reported unavailable, never 1.0
    scripted = torch.jit.load(str(inception.torchscript_path()), map_location="cpu").eval()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, _ = model(images)
        resized = torch.nn.functional.interpolate(
            images, size=(299, 299), mode="bilinear", align_corners=False
        )
        theirs = scripted(resized * 2 - 1)
    assert (ours - theirs).abs().max().item() < 1e-4
