"""FID and Inception Score on uint8 image tensors, with pytorch-fid's network and math.

Images take the same path as pytorch-fid's CLI on PNG files (uint8 -> [0, 1] floats,
grey replicated to RGB, bilinear resize to 299 inside the network), so the numbers
match the CLI on PNG folders of the same images. `precision: fp32` is the exact
mode: pytorch-fid's network as it is, in IEEE fp32 on GPUs too (TF32 off). `bf16` is the
fast mode: BatchNorm folded into the convolutions and bf16 autocast on CPUs, several times
faster on CPUs with AMX; TF32 on GPUs, where bf16 moved FID by 2% (benchmarks/gpu_paths.py).
channels_last speeds up both (benchmarks/fid_speed.py has the figures).
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from tqdm import tqdm

from ganlab.device import Precision
from ganlab.errors import GanlabError
from ganlab.io import atomic_path
from ganlab.metrics.inception import FIDInception


def fold_batchnorm_(model: nn.Module) -> int:
    """Fold every conv -> BatchNorm pair (Inception's BasicConv2d) into one conv with a bias.

    The same function in eval mode, one memory pass fewer per layer (~15% faster on this
    CPU); outputs move by ~1e-6 relative in fp32, so the exact mode leaves it out."""
    folded = 0
    for module in model.modules():
        conv, norm = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            module.conv, module.bn = fuse_conv_bn_eval(conv, norm), nn.Identity()
            folded += 1
    return folded


def prepare(
    model: FIDInception, device: torch.device, channels_last: bool, fold_batchnorm: bool = False
) -> FIDInception:
    """Move the network to the device, in channels_last layout if asked (faster on CPUs)."""
    model = model.to(device).eval()
    if fold_batchnorm:
        fold_batchnorm_(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


@contextlib.contextmanager
def tf32_math(device: torch.device, allowed: bool) -> Iterator[None]:
    """TF32 for fp32 convolutions and matmuls on a GPU, on or off for the block and put back
    after it (PyTorch's default has it on for convolutions); nothing changes on a CPU."""
    if device.type != "cuda":
        yield
        return
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # PyTorch >= 2.9
        switches = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
        saved = [switch.fp32_precision for switch in switches]
        for switch in switches:
            switch.fp32_precision = "tf32" if allowed else "ieee"
        try:
            yield
        finally:
            for switch, value in zip(switches, saved, strict=True):
                switch.fp32_precision = value
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@torch.no_grad()
def inception_outputs(
    images: torch.Tensor,
    model: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    *,
    batch_size: int,
    precision: Precision,
    device: torch.device,
    channels_last: bool = False,
    desc: str = "inception",
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 N x C x H x W images -> (pool3 features N x 2048 float64, logits N x 1008), by
    FIDInception or another runtime's network called the same way."""
    features, logits = [], []
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    batches = range(0, len(images), batch_size)
    with tf32_math(device, precision.tf32):
        for start in tqdm(batches, desc=desc, unit="batch", dynamic_ncols=True):
            batch = images[start : start + batch_size].to(device).float().div_(255)
            if batch.shape[1] == 1:
                batch = batch.expand(-1, 3, -1, -1)
            batch = batch.contiguous(memory_format=memory_format)
            with precision.autocast(device):
                pool3, batch_logits = model(batch)
            features.append(pool3.float().cpu())
            logits.append(batch_logits.float().cpu())
    return torch.cat(features).double().numpy(), torch.cat(logits).double().numpy()


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of features, as pytorch-fid computes them."""
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


class MetricError(GanlabError, ValueError):
    """A score can't be computed from these features; the message says why."""


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """pytorch-fid's Frechet distance, |mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr sqrt(s1 s2).

    tr sqrt(s1 s2) is the sum of the square roots of the eigenvalues of s1^1/2 s2 s1^1/2
    (the same nonzero eigenvalues as s1 s2), from two symmetric eigendecompositions: the
    value of pytorch-fid's scipy sqrtm (to ~1e-11 relative at full rank, ~1e-6 with fewer
    samples than dimensions; tests/metrics/test_fid.py) in a fifth of its time at 2048
    dimensions. Matrices that are no covariance (an eigenvalue below zero beyond rounding,
    NaNs) take pytorch-fid's own path, so they fail as they do there."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"FID: the two Gaussians differ in dimension (means {mu1.shape} and {mu2.shape}, "
            f"covariances {sigma1.shape} and {sigma2.shape}); expected features of one network"
        )
    trace_of_root = _trace_sqrt_product(sigma1, sigma2)
    if trace_of_root is None:
        return _pytorch_fid_distance(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_of_root)


NEGATIVE_EIGENVALUE_TOLERANCE = 1e-6  # relative to the largest: rounding, not a real direction


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float | None:
    """tr sqrt(sigma1 sigma2) for covariances; None when either is not one."""
    if not (np.isfinite(sigma1).all() and np.isfinite(sigma2).all()):
        return None
    values, vectors = np.linalg.eigh(sigma1)
    if _negative_beyond_rounding(values):
        return None
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    product = root @ sigma2 @ root
    values = np.linalg.eigvalsh((product + product.T) / 2)
    if _negative_beyond_rounding(values):
        return None
    return float(np.sqrt(np.clip(values, 0, None)).sum())


def _negative_beyond_rounding(eigenvalues: np.ndarray) -> bool:
    scale = max(float(np.abs(eigenvalues).max()), np.finfo(np.float64).tiny)
    return float(eigenvalues.min()) < -NEGATIVE_EIGENVALUE_TOLERANCE * scale


def _pytorch_fid_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    try:
        return float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    except ValueError as error:
        if "Imaginary component" not in str(error):
            raise
        raise MetricError(
            f"FID: the square root of the covariance product has an imaginary part of "
            f"{str(error).split()[-1]} on its diagonal, above pytorch-fid's bound of 1e-3, so no "
            "real distance exists; expected features of many distinct, finite images (too few "
            "samples, identical images or NaNs in the generator's output cause this)"
        ) from error


def fid_infinity(
    features: np.ndarray,
    mu: np.ndarray,
    sigma: np.ndarray,
    min_n: int,
    points: int = 15,
    seed: int = 0,
) -> tuple[float, list[tuple[int, float]]]:
    """Chong & Forsyth's FID-infinity ("Effectively Unbiased FID and Inception Score", CVPR
    2020): FID of N images is biased upwards by a term linear in 1/N, so FID at `points` sizes
    from `min_n` to all of `features` (nested subsets of one seeded shuffle, as in their code)
    is fitted by a line in 1/N, and the line's value at 1/N = 0 is the FID of infinitely many
    images. Returns it and the (N, FID) points. Only the scored side's N is extrapolated: the
    reference statistics (mu, sigma) stay as they are."""
    if not 2 <= min_n < len(features) or points < 2:
        raise ValueError(
            f"FID-infinity needs min_n in [2, {len(features)}) and at least 2 points, "
            f"got min_n={min_n}, points={points}"
        )
    shuffled = features[np.random.default_rng(seed).permutation(len(features))]
    sizes = np.unique(np.linspace(min_n, len(features), points).astype(int))
    curve = [(int(n), frechet_distance(*statistics(shuffled[:n]), mu, sigma)) for n in sizes]
    _slope, intercept = np.polyfit([1 / n for n, _ in curve], [v for _, v in curve], 1)
    return float(intercept), curve


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Salimans et al.: exp(E_x KL(p(y|x) || p(y))) over `splits` chunks; (mean, std)."""
    if len(logits) < splits:
        raise ValueError(f"Inception Score needs at least {splits} samples, got {len(logits)}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


def save_stats(path: str | Path, mu: np.ndarray, sigma: np.ndarray) -> None:
    """Write pytorch-fid's `--save-stats` format (an .npz with mu and sigma), atomically."""
    buffer = io.BytesIO()
    # np.savez stamps each member with the current time; fixed stamps keep reruns byte-identical
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in (("mu", mu), ("sigma", sigma)):
            member = io.BytesIO()
            np.save(member, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, member.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as stats:
        return stats["mu"][:], stats["sigma"][:]


def save_features(path: str | Path, features: np.ndarray) -> None:
    """Per-image features as float32 .npy (what KID and precision/recall need), atomically."""
    buffer = io.BytesIO()
    np.save(buffer, features.astype(np.float32), allow_pickle=False)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_features(path: str | Path) -> np.ndarray:
    return np.load(path, allow_pickle=False).astype(np.float64)
