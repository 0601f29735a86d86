"""Latent-space walks: linear and spherical interpolation between seeded latent points."""

from __future__ import annotations

import itertools

import torch

from ganlab.images import sample_latent


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (White, 2016): stays at the norms Gaussian latents have."""
    cos = torch.sum(z0 * z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:
        return lerp(z0, z1, t)
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


METHODS = {"linear": lerp, "slerp": slerp}


def latent_path(seeds: list[int], steps: int, z_dim: int, latent: str, method: str) -> torch.Tensor:
    """(len(seeds) - 1) * steps latent points walking from each seed's z to the next's."""
    points = [
        sample_latent(1, z_dim, latent, torch.device("cpu"), torch.Generator().manual_seed(seed))[0]
        for seed in seeds
    ]
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    walk = METHODS[method]
    return torch.cat([walk(a, b, t) for a, b in itertools.pairwise(points)])
