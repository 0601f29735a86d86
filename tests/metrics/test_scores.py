import numpy as np
import pytest
import torch

from ganlab.metrics import scores
from ganlab.metrics.scores import kernel_inception_distance, mmd2_unbiased, precision_recall


def brute_force_mmd2(x, y):
    k = lambda a, b: (np.dot(a, b) / len(a) + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_matches_the_definition():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(1.0, 2.0, size=(5, 3))
    assert mmd2_unbiased(x, y) == pytest.approx(brute_force_mmd2(x, y), rel=1e-10)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(2000, 16))
    same, _ = kernel_inception_distance(
        real, rng.normal(size=(2000, 16)), subsets=20, subset_size=500
    )
    shifted, _ = kernel_inception_distance(
        real, rng.normal(0.5, 1, size=(2000, 16)), subsets=20, subset_size=500
    )
    assert abs(same) < 2e-3
    assert shifted > 20 * max(abs(same), 1e-4)


def test_kid_from_whole_kernel_matrices_equals_kid_subset_by_subset(monkeypatch):
    """The shortcut for small sample sets (kernels of all samples once, then each subset's
    blocks) scores the same random subsets as computing each subset's kernels."""
    real, fake = _feature_sets(n_real=400, n_fake=300)
    whole = kernel_inception_distance(real, fake, subsets=10, subset_size=150)
    monkeypatch.setattr(scores, "WHOLE_KERNELS_MAX_ENTRIES", 0)
    by_subset = kernel_inception_distance(real, fake, subsets=10, subset_size=150)
    assert whole == pytest.approx(by_subset, rel=1e-9)
    assert whole[1] > 0  # the subsets differ: the same draws, not one subset ten times


def test_precision_recall_known_answers():
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0], [100.0, 0.0]])
    real = np.concatenate([c + rng.normal(size=(200, 2)) for c in centres])
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    # A generator covering one of two modes: all it makes is realistic, half the data is missed.
    half = real[:200]
    assert precision_recall(real, half) == (1.0, 0.5)
    # Far away from everything real: no precision, no recall.
    assert precision_recall(real, half + 1000.0) == (0.0, 0.0)


def _feature_sets(n_real: int = 300, n_fake: int = 200, dims: int = 16):
    """Two overlapping Gaussian clouds: precision, recall and KID all strictly inside (0, 1)."""
    rng = np.random.default_rng(7)
    real = rng.normal(size=(n_real, dims))
    fake = rng.normal(loc=0.4, scale=1.3, size=(n_fake, dims))
    return real, fake


def test_kid_matches_torch_fidelity_on_the_same_features():
    from torch_fidelity.metric_kid import kid_features_to_metric

    real, fake = _feature_sets(n_real=250, n_fake=250)
    # subsets of every sample: the MMD no longer depends on which random subsets are drawn
    ours, _ = kernel_inception_distance(real, fake, subsets=3, subset_size=len(fake))
    reference = kid_features_to_metric(
        torch.from_numpy(real),
        torch.from_numpy(fake),
        kid_subsets=3,
        kid_subset_size=len(fake),
        kid_degree=3,
        kid_gamma=None,
        kid_coef0=1,
        kid_kernel="poly",
        rng_seed=0,
        verbose=False,
    )
    assert reference["kernel_inception_distance_mean"] > 0
    assert ours == pytest.approx(reference["kernel_inception_distance_mean"], abs=1e-4, rel=1e-6)


def test_precision_recall_match_torch_fidelity_on_the_same_features():
    from torch_fidelity.metric_prc import prc_features_to_metric

    real, fake = _feature_sets()
    precision, recall = precision_recall(real, fake, k=3)
    # torch-fidelity's convention: features_1 are the generated samples, features_2 the real ones;
    # float64 on both sides (in float32, cdist's matmul shortcut moves samples across radii)
    reference = prc_features_to_metric(
        torch.from_numpy(fake),
        torch.from_numpy(real),
        prc_neighborhood=3,
        prc_batch_size=1000,
        save_cpu_ram=False,
        verbose=False,
    )
    assert 0 < precision < 1 and 0 < recall < 1
    assert precision == pytest.approx(reference["precision"], abs=1e-4)
    assert recall == pytest.approx(reference["recall"], abs=1e-4)
