"""Sample-based GAN metrics on feature vectors: KID and precision/recall.

Both take real and generated features from the same extractor (Inception pool3 or
the domain classifier) as float arrays of shape (n, d).
"""

from __future__ import annotations

import numpy as np
import torch


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3, the kernel of Binkowski et al. (2018)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased estimate of the squared MMD between samples x and y under the cubic kernel."""
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(xx + yy - 2 * k_xy.mean())


def kernel_inception_distance(
    real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: mean and std of the unbiased MMD^2 over random subsets (as in torch-fidelity)."""
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError(
            f"KID needs at least 2 real and 2 generated samples, got {len(real)}, {len(fake)}"
        )
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(
            real[rng.choice(len(real), size, replace=False)],
            fake[rng.choice(len(fake), size, replace=False)],
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def _kth_neighbour_radii(features: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    """Distance from each sample to its k-th nearest other sample in the same set."""
    radii = []
    for start in range(0, len(features), batch):
        distances = torch.cdist(features[start : start + batch], features)
        # the 0th smallest distance is the sample itself
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _inside_manifold(
    query: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, batch: int
) -> torch.Tensor:
    """For each query sample: is it within the k-NN radius of any support sample?"""
    inside = []
    for start in range(0, len(query), batch):
        distances = torch.cdist(query[start : start + batch], support)
        inside.append((distances <= radii.unsqueeze(0)).any(dim=1))
    return torch.cat(inside)


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = 3, batch: int = 1000
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019) with k-NN manifolds.

    Precision: share of generated samples inside the real manifold (quality).
    Recall: share of real samples inside the generated manifold (coverage).
    """
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k = {k} needs more than {k} samples in each set")
    real_t = torch.from_numpy(np.asarray(real, dtype=np.float64))
    fake_t = torch.from_numpy(np.asarray(fake, dtype=np.float64))
    real_radii = _kth_neighbour_radii(real_t, k, batch)
    fake_radii = _kth_neighbour_radii(fake_t, k, batch)
    precision = _inside_manifold(fake_t, real_t, real_radii, batch).double().mean().item()
    recall = _inside_manifold(real_t, fake_t, fake_radii, batch).double().mean().item()
    return precision, recall
