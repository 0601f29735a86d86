"""The classic GAN settings as params overrides: one place for the README's `-S` lines,
the tests and benchmarks/model_zoo.py.

    python -m ganlab.presets            # print a `dvc exp run` line per preset
"""

from __future__ import annotations

from typing import Any

# The papers' and lessons' G keeps BatchNorm's learned scale and shift; params.yaml's is
# self-modulated (g.self_modulation), the lab's own recipe as its EMA of G is.
PLAIN_G: dict[str, Any] = {"g.self_modulation": False}
PAPERS: dict[str, dict[str, Any]] = {
    # Radford et al. (2016): params.yaml's DCGAN at the paper's width, batch and length, no EMA.
    "dcgan": {
        "ngf": 64,
        "ndf": 64,
        "batch_size": 128,
        "epochs": 5,
        "ema.decay": None,
        **PLAIN_G,
    },
    # Arjovsky et al. (2017): RMSprop 5e-5, clipping 0.01, five critic steps per G step.
    "wgan_clip": {
        "loss": "wasserstein",
        "regularize.clip_value": 0.01,
        "n_critic": 5,
        "optim.g_optimizer": "rmsprop",
        "optim.d_optimizer": "rmsprop",
        "lr": 5e-5,
        **PLAIN_G,
    },
    # Gulrajani et al. (2017): lambda 10, Adam 1e-4 (0, 0.9), no BatchNorm in the critic.
    "wgan_gp": {
        "loss": "wasserstein",
        "regularize.gp_weight": 10.0,
        "n_critic": 5,
        "lr": 1e-4,
        "optim.beta1": 0.0,
        "optim.beta2": 0.9,
        "d.norm": "layer",
        **PLAIN_G,
    },
    # Miyato et al. (2018): hinge loss, spectral normalization, Adam (0, 0.9).
    "sngan": {
        "loss": "hinge",
        "d.spectral_norm": True,
        "d.norm": "none",
        "optim.beta1": 0.0,
        "optim.beta2": 0.9,
        **PLAIN_G,
    },
    # Mao et al. (2017).
    "lsgan": {"loss": "lsgan", **PLAIN_G},
    # Miyato & Koyama (2018): class-conditional with a projection discriminator, on SNGAN.
    "cgan_projection": {
        "classes.conditional": "projection",
        "loss": "hinge",
        "d.spectral_norm": True,
        "d.norm": "none",
        "optim.beta1": 0.0,
        "optim.beta2": 0.9,
        **PLAIN_G,
    },
    # Odena et al. (2017): an auxiliary classifier in D.
    "acgan": {"classes.conditional": "acgan", **PLAIN_G},
}

# The classic teaching setups, each exactly as its material has it (issue 17's table). Adam's
# betas are PyTorch's and TensorFlow's defaults (0.9, 0.999) unless the material sets them.
DEFAULT_BETAS = {"optim.beta1": 0.9, "optim.beta2": 0.999}
NO_EMA = {"ema.decay": None}  # params.yaml's recipe averages G; no lesson does
LESSONS: dict[str, dict[str, Any]] = {
    # The Fashion-MNIST MLP lab: D 784-128-64-32-1, G 100-32-64-128-784, LeakyReLU 0.2,
    # dropout 0.3 in both, z ~ U(-1, 1); D: SGD 0.02, G: Adam 0.002; batch 64, 20 epochs;
    # no label smoothing; G's step scores the fakes of D's step.
    "fashion_mlp_lab": {
        "dataset": "fashion_mnist",
        "model": "mlp",
        "z_dim": 100,
        "latent": "uniform",
        "dropout": 0.3,
        "optim.g_optimizer": "adam",
        "lr": 0.002,
        **DEFAULT_BETAS,
        "optim.d_optimizer": "sgd",
        "optim.d_lr": 0.02,
        "batch_size": 64,
        "epochs": 20,
        "regularize.real_label": 1.0,
        "g_fakes": "reuse",
        "init": "default",
        **NO_EMA,
    },
    # The Udacity GAN notes, MLP on MNIST: the same shapes; Adam 0.002 for both; batch 64,
    # 100 epochs; real labels smoothed to 0.9; fresh z for G's step.
    "udacity_mlp_mnist": {
        "dataset": "mnist",
        "model": "mlp",
        "z_dim": 100,
        "latent": "uniform",
        "dropout": 0.3,
        "lr": 0.002,
        **DEFAULT_BETAS,
        "batch_size": 64,
        "epochs": 100,
        "regularize.real_label": 0.9,
        "g_fakes": "fresh",
        "init": "default",
        **NO_EMA,
    },
    # The Udacity DCGAN on SVHN: conv_dim 32 (G: z -> 4x4x128 -> 8x8x64 -> 16x16x32 ->
    # 32x32x3), BatchNorm, LeakyReLU in D; Adam 2e-4 (0.5, 0.999); batch 128, 50 epochs.
    "udacity_dcgan_svhn": {
        "dataset": "svhn",
        "model": "dcgan",
        "ngf": 32,
        "ndf": 32,
        "z_dim": 100,
        "lr": 0.0002,
        "optim.beta1": 0.5,
        "optim.beta2": 0.999,
        "batch_size": 128,
        "epochs": 50,
        "g_fakes": "fresh",
        "init": "default",
        **NO_EMA,
        **PLAIN_G,
    },
    # The MNIST MLP tutorial: D 784-256-256-1 (LeakyReLU 0.2), G 64-256-256-784 (ReLU, tanh),
    # no dropout, z ~ N(0, 1) 64-d; Adam 2e-4; batch 100, 20 epochs.
    "mnist_mlp_tutorial": {
        "dataset": "mnist",
        "model": "mlp",
        "mlp": {
            "g_hidden": [256, 256],
            "d_hidden": [256, 256],
            "g_activation": "relu",
            "d_activation": "leaky_relu",
            "output": "tanh",
        },
        "z_dim": 64,
        "latent": "normal",
        "dropout": 0.0,
        "lr": 0.0002,
        **DEFAULT_BETAS,
        "batch_size": 100,
        "epochs": 20,
        "g_fakes": "fresh",
        "init": "default",
        **NO_EMA,
    },
    # The TensorFlow MLP tutorial: one hidden layer of 256 in each, ReLU, Glorot init, G's
    # output a sigmoid with data in [0, 1]; z ~ U(-1, 1) 100-d; Adam 2e-4; batch 128; 70,000
    # steps; D and G step on the same z.
    "tf_mlp_mnist": {
        "dataset": "mnist",
        "model": "mlp",
        "mlp": {
            "g_hidden": [256],
            "d_hidden": [256],
            "g_activation": "relu",
            "d_activation": "relu",
            "output": "sigmoid",
        },
        "z_dim": 100,
        "latent": "uniform",
        "dropout": 0.0,
        "lr": 0.0002,
        **DEFAULT_BETAS,
        "batch_size": 128,
        "train": {"max_steps": 70000},
        "g_fakes": "reuse",
        "init": "xavier",
        **NO_EMA,
    },
    # The DCGAN/WGAN study, DCGAN on CelebA at 64x64: G from 4x4x(16 x 64 features) = 1024
    # channels (ngf 128 here, whose G starts at 8 x ngf), D 64 features; Adam 2e-4 (0.5, 0.999);
    # batch 128, 5 epochs.
    "dcgan_celeba": {
        "dataset": "celeba",
        "image_size": 64,
        "model": "dcgan",
        "ngf": 128,
        "ndf": 64,
        "z_dim": 100,
        "lr": 0.0002,
        "optim.beta1": 0.5,
        "optim.beta2": 0.999,
        "batch_size": 128,
        "epochs": 5,
        "g_fakes": "reuse",
        **NO_EMA,
        **PLAIN_G,
    },
    # The same study's DCGAN on MNIST at 32x32 with batch 32.
    "dcgan_mnist32": {
        "dataset": "mnist",
        "image_size": 32,
        "model": "dcgan",
        "ngf": 64,
        "ndf": 64,
        "z_dim": 100,
        "lr": 0.0002,
        "optim.beta1": 0.5,
        "optim.beta2": 0.999,
        "batch_size": 32,
        "epochs": 5,
        "g_fakes": "reuse",
        **NO_EMA,
        **PLAIN_G,
    },
    # The same study's WGAN: RMSprop 5e-4, batch 64, 3 epochs, 5 critic steps, clipping 0.01.
    "wgan_clip_study": {
        "dataset": "mnist",
        "image_size": 64,
        "model": "dcgan",
        "ngf": 128,
        "ndf": 64,
        "z_dim": 100,
        "loss": "wasserstein",
        "regularize.clip_value": 0.01,
        "n_critic": 5,
        "optim.g_optimizer": "rmsprop",
        "optim.d_optimizer": "rmsprop",
        "lr": 0.0005,
        "batch_size": 64,
        "epochs": 3,
        **NO_EMA,
        **PLAIN_G,
    },
    # The Udacity semi-supervised GAN (Salimans et al., 2016): D a K + 1-way classifier trained
    # on 1,000 labeled images (here 100 of each Fashion-MNIST class) and the unlabeled rest, G
    # trained with feature matching; Adam (0.5, 0.999). Udacity's notebook has a conv D on SVHN;
    # on 28x28 greyscale the paper's own MNIST networks (D 784-1000-500-250-250-250, G
    # 100-500-500-784) measured better against the labeled-only baseline (README).
    "udacity_semi_supervised": {
        "dataset": "fashion_mnist",
        "model": "mlp",
        "mlp": {
            "g_hidden": [500, 500],
            "d_hidden": [1000, 500, 250, 250, 250],
            "g_activation": "relu",
            "d_activation": "leaky_relu",
            "output": "tanh",
        },
        "semi_supervised": {"labels_per_class": 100},
        # the paper's weighting: its unsupervised loss is half of bce's
        "classes.class_weight": 2.0,
        "feature_matching": True,
        "loss": "bce",
        "z_dim": 100,
        "latent": "uniform",
        "dropout": 0.3,
        "lr": 0.001,
        "optim.beta1": 0.5,
        "optim.beta2": 0.999,
        "batch_size": 100,
        "epochs": 10,
        "g_fakes": "fresh",
        "init": "default",
        **NO_EMA,
    },
}
# The lab's own recipes for a wall-clock budget (benchmarks/quality.py measures them): batch 64
# for twice the updates of 128, epochs enough that the clock ends training, a G snapshot every
# 10 minutes, FID-10k; G self-modulated as params.yaml's, the one lever of issue 41 that won
# step for step (Inception FID-10k 16.79 against 19.38 at 30,000 updates, two seeds each:
# docs/results/levers.md).
THIRTY_MINUTES: dict[str, Any] = {
    "batch_size": 64,
    "epochs": 1000,
    "train": {"max_minutes": 30, "snapshot_minutes": 10},
    "fid": {"n_real": 10000, "n_fake": 10000},
}
# For CPUs that train in fp32 (AVX2 only: no bf16): params.yaml's width 32, whose step is
# 2.6x cheaper there than width 64's, and lr 5e-4 for G and D, which reached the defaults'
# classifier FID in ~35% fewer steps (README).
FP32_RECIPE: dict[str, Any] = {"ngf": 32, "ndf": 32, "lr": 0.0005, **THIRTY_MINUTES}
RECIPES: dict[str, dict[str, Any]] = {
    # DCGAN at Radford's width with params.yaml's EMA of G, precision auto (the probe picks bf16
    # at this width on an AMD EPYC without AMX).
    "fashion_30min": {"ngf": 64, "ndf": 64, **THIRTY_MINUTES},
    "fashion_30min_fp32": FP32_RECIPE,
    # The same with batch 128 and lr 1e-3: 56% more images a second than batch 64 on a 2-core
    # Xeon (2,599 against 1,665), FID-10k 19.98 against 21.87 after 10 minutes (README).
    "fashion_30min_b128": {**FP32_RECIPE, "lr": 0.001, "batch_size": 128},
    # One GPU for 5 minutes: a width-32 DCGAN at batch 128 is launch-bound there, so width 128
    # and batch 256 (lr 1e-3, twice the CPU recipes' for four times the batch), EMA and
    # in-training scoring as params.yaml, FID-10k; precision auto is bf16 on GPUs.
    "fashion_gpu": {
        "ngf": 128,
        "ndf": 128,
        "batch_size": 256,
        "lr": 0.001,
        "epochs": 1000,
        "precision": "auto",
        "train": {"max_minutes": 5, "eval_every": 500},
        "fid": {"n_real": 10000, "n_fake": 10000},
    },
}
PRESETS: dict[str, dict[str, Any]] = {**PAPERS, **LESSONS, **RECIPES}


def flat_overrides(name: str) -> dict[str, Any]:
    """A preset as `-S` keys: sections dotted (train.max_steps, mlp.g_hidden)."""
    flat: dict[str, Any] = {}
    for key, value in PRESETS[name].items():
        if isinstance(value, dict):
            flat |= {f"{key}.{inner}": v for inner, v in value.items()}
        else:
            flat[key] = value
    return flat


def yaml_value(value: Any) -> str:
    """How `dvc exp run -S` wants a value: YAML booleans and flow lists."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(yaml_value(v) for v in value) + "]"
    return str(value)


def exp_run_line(name: str) -> str:
    """The `dvc exp run` command that reproduces a preset."""

    sets = " ".join(f"-S {key}={yaml_value(v)}" for key, v in flat_overrides(name).items())
    return f"dvc exp run -n {name.replace('_', '-')} {sets}".rstrip()


if __name__ == "__main__":
    for preset in PRESETS:
        print(exp_run_line(preset))
