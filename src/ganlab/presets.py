"""The classic GAN settings as params overrides: one place for the README's `-S` lines,
the tests and benchmarks/model_zoo.py.

    python -m ganlab.presets            # print a `dvc exp run` line per preset
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # Radford et al. (2016): the defaults in params.yaml.
    "dcgan": {},
    # The classic fully-connected lab GAN (Goodfellow et al., 2014, as taught on Fashion-MNIST):
    # uniform noise, dropout 0.3, SGD for D, one-sided label smoothing.
    "mlp_lab": {
        "model": "mlp",
        "latent": "uniform",
        "dropout": 0.3,
        "d_optimizer": "sgd",
        "d_lr": 0.02,
        "real_label": 0.9,
        "init": "default",
    },
    # Arjovsky et al. (2017): RMSprop 5e-5, clipping 0.01, five critic steps per G step.
    "wgan_clip": {
        "loss": "wasserstein",
        "clip_value": 0.01,
        "n_critic": 5,
        "g_optimizer": "rmsprop",
        "d_optimizer": "rmsprop",
        "lr": 5e-5,
    },
    # Gulrajani et al. (2017): lambda 10, Adam 1e-4 (0, 0.9), no BatchNorm in the critic.
    "wgan_gp": {
        "loss": "wasserstein",
        "gp_weight": 10.0,
        "n_critic": 5,
        "lr": 1e-4,
        "beta1": 0.0,
        "beta2": 0.9,
        "d_norm": "layer",
    },
    # Miyato et al. (2018): hinge loss, spectral normalization, Adam (0, 0.9).
    "sngan": {"loss": "hinge", "spectral_norm": True, "d_norm": "none", "beta1": 0.0, "beta2": 0.9},
    # Mao et al. (2017).
    "lsgan": {"loss": "lsgan"},
    # Miyato & Koyama (2018): class-conditional with a projection discriminator, on SNGAN.
    "cgan_projection": {
        "conditional": "projection",
        "loss": "hinge",
        "spectral_norm": True,
        "d_norm": "none",
        "beta1": 0.0,
        "beta2": 0.9,
    },
    # Odena et al. (2017): an auxiliary classifier in D.
    "acgan": {"conditional": "acgan"},
}


def exp_run_line(name: str) -> str:
    """The `dvc exp run` command that reproduces a preset."""

    def value(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)

    sets = " ".join(f"-S {key}={value(v)}" for key, v in PRESETS[name].items())
    return f"dvc exp run -n {name.replace('_', '-')} {sets}".rstrip()


if __name__ == "__main__":
    for preset in PRESETS:
        print(exp_run_line(preset))
