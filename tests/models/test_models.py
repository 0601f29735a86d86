import pytest
import torch

from ganlab.models import INITS, MODELS, build_models
from ganlab.models.layers import (
    DepthToSpaceConvTranspose2d,
    MinibatchDiscrimination,
    SeedConvTranspose2d,
    SpaceToDepthConv2d,
)
from tests.conftest import tiny_spec


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("init", sorted(INITS))
def test_generator_and_discriminator_shapes(name, init):
    spec = tiny_spec(z_dim=12, image_shape=(1, 28, 28), ngf=8, ndf=8, dropout=0.3)
    netG, netD = build_models(name, spec, init)
    z = torch.randn(5, 12)
    fake = netG(z)
    assert fake.shape == (5, 1, 28, 28)
    assert fake.min() >= -1 and fake.max() <= 1  # tanh output
    assert netD(fake).shape == (5,)  # one logit per image


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_handles_its_image_sizes(size, channels):
    netG, netD = build_models("dcgan", tiny_spec(8, (channels, size, size), ngf=4, ndf=4), "dcgan")
    fake = netG(torch.randn(2, 8))
    assert fake.shape == (2, channels, size, size)
    assert netD(fake).shape == (2,)


REWRITTEN_LAYERS = {  # name: (the rewritten layer, its PyTorch parent built alike, an input)
    "seed": (
        lambda c: SeedConvTranspose2d(12, 16, 7),
        lambda c: torch.nn.ConvTranspose2d(12, 16, 7, 1, 0, bias=False),
        lambda c, side: torch.randn(3, 12, 1, 1),
    ),
    "d_first": (
        lambda c: SpaceToDepthConv2d(c, 16, bias=True),
        lambda c: torch.nn.Conv2d(c, 16, 4, 2, 1, bias=True),
        lambda c, side: torch.randn(3, c, side, side),
    ),
    "g_last": (
        lambda c: DepthToSpaceConvTranspose2d(16, c, bias=True),
        lambda c: torch.nn.ConvTranspose2d(16, c, 4, 2, 1, bias=True),
        lambda c, side: torch.randn(3, 16, side // 2, side // 2),
    ),
}


@pytest.mark.parametrize("layer", sorted(REWRITTEN_LAYERS))
@pytest.mark.parametrize(("channels", "side"), [(1, 28), (3, 32), (3, 64)])
def test_dcgans_rewritten_layers_compute_what_their_parents_do(layer, channels, side):
    """Same outputs and gradients (input, weights, and through a gradient, as R1 needs) from the
    same state dict: the rewrite is a speed-up, never a different model or checkpoint."""
    make, make_parent, make_input = REWRITTEN_LAYERS[layer]
    torch.manual_seed(0)
    fast, parent = make(channels), make_parent(channels)
    parent.load_state_dict(fast.state_dict())
    x = make_input(channels, side)
    results = []
    for net in (fast, parent):
        xi = x.clone().requires_grad_(True)
        out = net(xi)
        grad_x, grad_w = torch.autograd.grad(out.pow(2).sum(), [xi, net.weight], create_graph=True)
        (grad_grad_w,) = torch.autograd.grad(grad_x.pow(2).sum(), [net.weight])
        results.append((out, grad_x, grad_w, grad_grad_w))
    for got, want in zip(*results, strict=True):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


def test_dcgan_rejects_sizes_it_cannot_build():
    with pytest.raises(ValueError, match="28, 32 and 64"):
        build_models("dcgan", tiny_spec(8, (1, 48, 48)), "dcgan")


def test_dcgan_init_draws_weights_from_n_0_002():
    spec = tiny_spec(100, (1, 28, 28), ngf=64, self_modulation=False)  # BatchNorm's own gamma
    netG, _ = build_models("dcgan", spec, "dcgan")
    weights = torch.cat(
        [m.weight.flatten() for m in netG.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    )
    assert weights.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert weights.std().item() == pytest.approx(0.02, rel=0.02)
    gammas = torch.cat([m.weight for m in netG.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert gammas.mean().item() == pytest.approx(1.0, abs=0.01)


def test_dcgan_has_no_batchnorm_on_d_input_or_g_output():
    netG, netD = build_models("dcgan", tiny_spec(8, (1, 28, 28)), "dcgan")
    assert isinstance(list(netD.features)[1], torch.nn.LeakyReLU)  # conv -> LeakyReLU, no BatchNorm
    assert isinstance(list(netG.net)[-1], torch.nn.Tanh)
    assert isinstance(list(netG.net)[-2], torch.nn.ConvTranspose2d)


def test_mlp_matches_the_classic_lab_layer_sizes():
    netG, netD = build_models("mlp", tiny_spec(100, (1, 28, 28), dropout=0.3), "default")
    g_sizes = [
        (m.in_features, m.out_features) for m in netG.modules() if isinstance(m, torch.nn.Linear)
    ]
    d_sizes = [
        (m.in_features, m.out_features) for m in netD.modules() if isinstance(m, torch.nn.Linear)
    ]
    assert g_sizes == [(100, 32), (32, 64), (64, 128), (128, 784)]
    assert d_sizes == [(784, 128), (128, 64), (64, 32), (32, 1)]


def test_unknown_model_lists_the_choices():
    with pytest.raises(KeyError, match="dcgan"):
        build_models("stylegan9", tiny_spec(8, (1, 28, 28)), "dcgan")


def test_minibatch_discrimination_tells_a_collapsed_batch_from_a_varied_one():
    torch.manual_seed(0)  # the layer's random T: the test's own, not what ran before it
    layer = MinibatchDiscrimination(in_features=12, kernels=3, kernel_dim=2)
    copies = torch.ones(4, 3, 2, 2).expand(4, 3, 2, 2).clone()  # a collapsed G: one image
    varied = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2) * 100
    out_copies, out_varied = layer(copies), layer(varied)
    assert out_copies.shape == (4, 3 + 3, 2, 2)  # 3 closeness channels, constant over H, W
    # each copy is exp(0) = 1 close to each of the 3 others; far-apart samples to none
    assert torch.allclose(out_copies[:, 3:], torch.full((4, 3, 2, 2), 3.0))
    assert out_varied[:, 3:].max() < 1e-3
    assert layer(torch.ones(4, 12)).shape == (4, 15)  # flat features (the mlp's D)


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_minibatch_discrimination_makes_ds_verdict_depend_on_the_batch(model):
    spec = tiny_spec(8, (1, 28, 28), ngf=4, ndf=4, minibatch_discrimination=True)
    _, netD = build_models(model, spec, "dcgan")
    netD.eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        alone = netD(x[:1])
        with_copies = netD(x[:1].expand(4, -1, -1, -1))[:1]  # beside three copies of itself
    assert not torch.allclose(alone, with_copies)
