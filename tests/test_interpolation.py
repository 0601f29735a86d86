import math

import torch

from ganlab.interpolation import latent_path, lerp, slerp


def test_slerp_between_orthonormal_vectors_stays_on_the_sphere():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    middle = slerp(e1, e2, torch.tensor(0.5))
    assert torch.allclose(middle, torch.tensor([1.0, 1.0]) / math.sqrt(2))
    assert torch.allclose(slerp(e1, e2, torch.tensor(0.0)), e1)
    assert torch.allclose(slerp(e1, e2, torch.tensor(1.0)), e2)
    assert torch.allclose(lerp(e1, e2, torch.tensor(0.5)), torch.tensor([0.5, 0.5]))


def test_latent_path_walks_from_seed_to_seed():
    path = latent_path([3, 4, 5], steps=6, z_dim=10, latent="normal", method="slerp")
    assert path.shape == (12, 10)
    z3 = torch.randn(1, 10, generator=torch.Generator().manual_seed(3))[0]
    z5 = torch.randn(1, 10, generator=torch.Generator().manual_seed(5))[0]
    assert torch.allclose(path[0], z3, atol=1e-6)
    assert torch.allclose(path[-1], z5, atol=1e-6)
    assert torch.allclose(path[5], path[6], atol=1e-6)  # one walk ends where the next starts
