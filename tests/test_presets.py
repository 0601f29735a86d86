"""Each classic lesson's preset builds the networks, optimizers and data range the lesson has.

The expected values are the lessons' own (issue 17's table), written out here rather than
read from ganlab.presets, so a wrong preset fails.
"""

from __future__ import annotations

import dataclasses
import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from ganlab.data import datasets
from ganlab.data.datasets import DATASETS
from ganlab.images import sample_latent
from ganlab.models import pixel_low
from ganlab.presets import LESSONS, PRESETS, exp_run_line, flat_overrides
from ganlab.training import distributed
from ganlab.training.gan import build_nets, model_spec
from ganlab.training.params import from_mapping
from ganlab.training.runner import planned_steps
from tests.conftest import FP32, REPO, tiny_images, train_on_cpu, write_idx_gz
from tests.data.test_formats import serve_as

ADAM, SGD, RMSPROP = torch.optim.Adam, torch.optim.SGD, torch.optim.RMSprop
LEAKY, RELU = nn.LeakyReLU, nn.ReLU

LAB_MLP = (  # the Fashion-MNIST lab's shapes, which the Udacity notes share
    [(100, 32), (32, 64), (64, 128), (128, 784)],
    [(784, 128), (128, 64), (64, 32), (32, 1)],
    LEAKY,
    LEAKY,
    0.3,
    nn.Tanh,
)
MLPS = {  # preset: (G's Linear shapes, D's, G's and D's hidden activation, dropout, output)
    "fashion_mlp_lab": LAB_MLP,
    "udacity_mlp_mnist": LAB_MLP,
    "mnist_mlp_tutorial": (
        [(64, 256), (256, 256), (256, 784)],
        [(784, 256), (256, 256), (256, 1)],
        RELU,
        LEAKY,
        0.0,
        nn.Tanh,
    ),
    "tf_mlp_mnist": ([(100, 256), (256, 784)], [(784, 256), (256, 1)], RELU, RELU, 0.0, nn.Sigmoid),
    "udacity_semi_supervised": (  # D's last layer: 10 classes + fake
        [(100, 500), (500, 500), (500, 784)],
        [(784, 1000), (1000, 500), (500, 250), (250, 250), (250, 250), (250, 11)],
        RELU,
        LEAKY,
        0.3,
        nn.Tanh,
    ),
}
CONVS = {  # preset: (G's channels from the 4x4 seed to the image, D's from the image, side)
    "udacity_dcgan_svhn": ([128, 64, 32, 3], [3, 32, 64, 128], 32),
    "dcgan_celeba": ([1024, 512, 256, 128, 3], [3, 64, 128, 256, 512], 64),
    "dcgan_mnist32": ([256, 128, 64, 1], [1, 64, 128, 256], 32),
    "wgan_clip_study": ([1024, 512, 256, 128, 1], [1, 64, 128, 256, 512], 64),
}
TRAINING = {  # preset: (G's optimizer, lr, betas; D's optimizer, lr; batch; epochs or steps)
    "fashion_mlp_lab": (ADAM, 0.002, (0.9, 0.999), SGD, 0.02, 64, "20 epochs"),
    "udacity_mlp_mnist": (ADAM, 0.002, (0.9, 0.999), ADAM, 0.002, 64, "100 epochs"),
    "udacity_dcgan_svhn": (ADAM, 2e-4, (0.5, 0.999), ADAM, 2e-4, 128, "50 epochs"),
    "mnist_mlp_tutorial": (ADAM, 2e-4, (0.9, 0.999), ADAM, 2e-4, 100, "20 epochs"),
    "tf_mlp_mnist": (ADAM, 2e-4, (0.9, 0.999), ADAM, 2e-4, 128, "70000 steps"),
    "dcgan_celeba": (ADAM, 2e-4, (0.5, 0.999), ADAM, 2e-4, 128, "5 epochs"),
    "dcgan_mnist32": (ADAM, 2e-4, (0.5, 0.999), ADAM, 2e-4, 32, "5 epochs"),
    "wgan_clip_study": (RMSPROP, 5e-4, None, RMSPROP, 5e-4, 64, "3 epochs"),
    "udacity_semi_supervised": (ADAM, 1e-3, (0.5, 0.999), ADAM, 1e-3, 100, "10 epochs"),
}
NOISE = {  # preset: (z_dim, latent, real label, G's fakes)
    "fashion_mlp_lab": (100, "uniform", 1.0, "reuse"),
    "udacity_mlp_mnist": (100, "uniform", 0.9, "fresh"),
    "udacity_dcgan_svhn": (100, "normal", 1.0, "fresh"),
    "mnist_mlp_tutorial": (64, "normal", 1.0, "fresh"),
    "tf_mlp_mnist": (100, "uniform", 1.0, "reuse"),
    "dcgan_celeba": (100, "normal", 1.0, "reuse"),
    "dcgan_mnist32": (100, "normal", 1.0, "reuse"),
    "wgan_clip_study": (100, "normal", 1.0, "reuse"),
    "udacity_semi_supervised": (100, "uniform", 1.0, "fresh"),
}


def lesson_config(name: str):
    """params.yaml with the preset applied, as `dvc exp run -S` leaves it."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in flat_overrides(name).items():
        section, _, inner = key.rpartition(".")
        (params[section] if section else params)[inner] = value
    return from_mapping(params)


def build(name: str):
    config = lesson_config(name)
    info = DATASETS[config.dataset]
    channels, side, _ = info.image_shape
    side = config.image_size or side
    spec = model_spec(config, (channels, side, side), len(info.class_names))
    nets = build_nets(config, spec, torch.device("cpu"), FP32, distributed.World())
    return config, nets


def test_every_lesson_is_checked_against_the_table():
    assert set(LESSONS) == set(TRAINING) == set(NOISE) == set(MLPS) | set(CONVS)


@pytest.mark.parametrize("name", sorted(MLPS))
def test_mlp_lessons_build_the_layers_activations_and_output_they_teach(name):
    g_shapes, d_shapes, g_act, d_act, dropout, output = MLPS[name]
    _, nets = build(name)
    for net, shapes, act in ((nets.netG, g_shapes, g_act), (nets.netD, d_shapes, d_act)):
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linears] == shapes
        hidden = [m for m in net.modules() if isinstance(m, LEAKY | RELU)]
        assert len(hidden) == len(shapes) - 1 and all(type(m) is act for m in hidden)
        assert all(m.negative_slope == 0.2 for m in hidden if isinstance(m, LEAKY))
        assert {m.p for m in net.modules() if isinstance(m, nn.Dropout)} <= {dropout}
    assert isinstance(list(nets.netG.modules())[-1], output)
    assert pixel_low(nets.netG) == (0.0 if output is nn.Sigmoid else -1.0)


@pytest.mark.parametrize("name", sorted(CONVS))
def test_dcgan_lessons_build_the_channels_they_teach(name):
    g_channels, d_channels, side = CONVS[name]
    config, nets = build(name)
    g_convs = [m for m in nets.netG.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in g_convs] == g_channels
    assert g_convs[0].in_channels == config.z_dim and g_convs[0].kernel_size == (4, 4)
    d_convs = [m for m in nets.netD.features.modules() if isinstance(m, nn.Conv2d)]
    assert [m.in_channels for m in d_convs] + [d_convs[-1].out_channels] == d_channels
    image = nets.netG.eval()(torch.randn(2, config.z_dim))
    assert image.shape == (2, g_channels[-1], side, side)


@pytest.mark.parametrize("name", sorted(TRAINING))
def test_lessons_train_with_the_optimizers_batch_and_length_they_teach(name):
    g_opt, g_lr, betas, d_opt, d_lr, batch, length = TRAINING[name]
    config, nets = build(name)
    assert type(nets.optG) is g_opt and nets.optG.param_groups[0]["lr"] == pytest.approx(g_lr)
    assert type(nets.optD) is d_opt and nets.optD.param_groups[0]["lr"] == pytest.approx(d_lr)
    if betas is not None:
        assert nets.optG.param_groups[0]["betas"] == betas
    assert config.batch_size == batch
    count, unit = length.split()
    if unit == "steps":
        assert planned_steps(config, steps_per_epoch=468) == int(count)
    else:
        assert config.epochs == int(count) and config.train.max_steps is None
    assert (config.z_dim, config.latent, config.regularize.real_label, config.g_fakes) == NOISE[
        name
    ]
    assert config.ema.decay is None and config.classes.conditional == "none"


def test_the_semi_supervised_lesson_learns_from_100_labels_a_class_with_feature_matching():
    config, nets = build("udacity_semi_supervised")
    assert config.semi_supervised.labels_per_class == 100 and config.feature_matching
    assert config.classes.class_weight == 2.0  # Salimans et al.: half-weight unsupervised loss
    assert config.dataset == "fashion_mnist" and config.loss == "bce"
    assert nets.netD.classify(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_the_sigmoid_generator_trains_on_data_in_0_1(tmp_path: Path, cpu):
    """tf_mlp_mnist's G outputs [0, 1]; D sees real images in the same range."""
    config = lesson_config("tf_mlp_mnist")
    params = {**config_to_tiny(config), "train": {"max_steps": 6, "log_every": 2}}
    tiny = from_mapping(params)
    result = train_on_cpu(tiny, tiny_images(), tmp_path / "c.pt")
    assert result.steps == 6  # train.max_steps, not epochs
    samples = result.netG(torch.rand(8, tiny.z_dim) * 2 - 1)
    assert samples.min() >= 0 and samples.max() <= 1


def config_to_tiny(config) -> dict:
    """The lesson's params on the tiny fixture data (Fashion-MNIST-shaped, batch 16)."""
    return {
        "dataset": "fashion_mnist",
        "model": config.model,
        "mlp": {
            "g_hidden": list(config.mlp.g_hidden),
            "d_hidden": list(config.mlp.d_hidden),
            "g_activation": config.mlp.g_activation,
            "d_activation": config.mlp.d_activation,
            "output": config.mlp.output,
        },
        "latent": config.latent,
        "init": config.init,
        "batch_size": 16,
        "precision": "fp32",
    }


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_params_yaml(name):
    """`dvc exp run` with a preset's line passes the stages' params check (a mistyped key or
    value would stop the pipeline before any work)."""
    lesson_config(name)


def test_the_batch_128_recipe_trains_width_32_at_lr_1e_3_for_30_minutes():
    config = lesson_config("fashion_30min_b128")
    assert (config.ngf, config.ndf, config.batch_size, config.lr) == (32, 32, 128, 0.001)
    assert (config.train.max_minutes, config.fid.n_real, config.fid.n_fake) == (30, 10000, 10000)


def test_exp_run_lines_set_sections_with_dotted_keys():
    line = exp_run_line("tf_mlp_mnist")
    assert "-S mlp.g_hidden=[256]" in line and "-S train.max_steps=70000" in line
    assert all(exp_run_line(name).startswith("dvc exp run -n ") for name in PRESETS)


OFFLINE_LESSONS = sorted(name for name, p in LESSONS.items() if p["dataset"] != "fashion_mnist")


def write_real_format(dataset: str, folder: Path, n: int) -> None:
    """n training images (and a few test ones) in the dataset's own files, as published."""
    rng = np.random.default_rng(0)
    if dataset == "mnist":
        for split, count in (("train", n), ("t10k", 4)):
            images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
            write_idx_gz(folder / f"{split}-images-idx3-ubyte.gz", images)
            labels = (np.arange(count) % 10).astype(np.uint8)
            write_idx_gz(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    elif dataset == "svhn":
        from scipy.io import savemat

        for split, count in (("train", n), ("test", 4)):
            images = rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
            digits = (np.arange(count) % 10 + 1).astype(np.uint8).reshape(count, 1)
            savemat(folder / f"{split}_32x32.mat", {"X": images, "y": digits})
    elif dataset == "celeba":
        from PIL import Image

        partition = []
        with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as archive:
            for i in range(1, n + 3):
                buffer = io.BytesIO()
                Image.new("RGB", (178, 218), (i % 256, 90, 160)).save(buffer, "JPEG")
                archive.writestr(f"img_align_celeba/{i:06d}.jpg", buffer.getvalue())
                partition.append(f"{i:06d}.jpg {0 if i <= n else 2}")
        (folder / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    else:
        raise AssertionError(f"no real-format writer for {dataset}")


@pytest.mark.parametrize("name", OFFLINE_LESSONS)
def test_lessons_on_other_datasets_train_on_their_real_formats(name, served, tmp_path, monkeypatch):
    """MNIST, SVHN and CelebA can't be downloaded here: each lesson's params go through the real
    download (served from 127.0.0.1), the real reader and the trainer, for one batch of the
    lesson's own size and one G update."""
    config = lesson_config(name)
    folder, url = served
    write_real_format(config.dataset, folder, config.batch_size)
    serve_as(monkeypatch, config.dataset, folder, url)
    datasets.download(config.dataset, tmp_path / "data")
    images, labels = datasets.load_images(
        config.dataset, tmp_path / "data", train=True, size=config.image_size
    )
    short = dataclasses.replace(
        config,
        train=dataclasses.replace(config.train, max_steps=config.n_critic, eval_every=None),
    )
    result = train_on_cpu(short, images, tmp_path / "c.pt", labels)
    assert result.steps == config.n_critic and result.history
    assert all(math.isfinite(value) for value in result.history[-1][2:4])  # d_loss, g_loss
    z = sample_latent(2, config.z_dim, config.latent, torch.device("cpu"))
    side = config.image_size or DATASETS[config.dataset].image_shape[1]
    assert result.netG(z).shape == (2, images.shape[1], side, side)
