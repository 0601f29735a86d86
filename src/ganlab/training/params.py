"""params.yaml checked against every registry training uses, and what those registries say
about the params (which adversarial loss a translator trains with).

The schema (ganlab.config) checks types and rules; here the names (dataset, model, loss,
augmentation, ...) and the combinations that need a registry's facts are checked, before
any work starts. The train, evaluate and render stages load params through `load`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ganlab import models
from ganlab.config import (
    SNAPSHOT_KEYS,
    Config,
    ConfigError,
    TranslationSection,
    check_names,
    config_from_dict,
    load_config,
)
from ganlab.data import datasets
from ganlab.data.domains import check_task
from ganlab.models import translates
from ganlab.training.augment import AUGMENTATIONS
from ganlab.training.losses import LOSSES

PAPER_LOSS = {"pix2pix": "bce", "cyclegan": "lsgan"}  # translation.gan_loss: auto


def load(path: str | Path = "params.yaml") -> Config:
    """params.yaml, validated by the schema and by every registry training uses."""
    return load_config(path, check_params)


def check_params(config: Config) -> None:
    """The names of every registry, and the combinations that need a registry's facts."""
    datasets.check_params(config)
    models.check_params(config)
    check_names(config, {"loss": LOSSES, "augmentation": AUGMENTATIONS})
    if translates(config.model):
        _check_translation(config)
    max_steps = config.train.max_steps
    if max_steps is not None and not translates(config.model) and max_steps < config.n_critic:
        raise ConfigError(
            f"params.yaml: train.max_steps = {max_steps} is fewer than n_critic = "
            f"{config.n_critic} D steps, so G would never update: expected train.max_steps >= "
            "n_critic"
        )
    _check_semi_supervised(config)
    _check_progressive(config)
    _check_ignored(config)


# Params that change nothing under other settings: (key, when it has no effect, why). Set away
# from its default there, such a param is refused, never silently ignored.
IGNORED: tuple[tuple[str, Callable[[Config], bool], str], ...] = (
    (
        "regularize.real_label",
        lambda c: translates(c.model) or not LOSSES[c.loss].real_target,
        "with this loss (bce, minimax and lsgan have a real label; translators none)",
    ),
    ("optim.lr_decay_start", lambda c: c.optim.lr_decay == "none", "with optim.lr_decay = 'none'"),
    ("ema.warmup", lambda c: c.ema.decay is None or translates(c.model), "without an EMA of G"),
    (
        "classes.class_weight",
        lambda c: c.classes.conditional != "acgan" and not c.semi_supervised_on,
        "without a class loss (classes.conditional: acgan, or semi_supervised)",
    ),
    (
        "classes.label_input",
        lambda c: c.classes.conditional == "none",
        "with classes.conditional = 'none'",
    ),
    ("z_dim", lambda c: translates(c.model), "for a translator, which takes images"),
    (
        "g.self_modulation",
        lambda c: c.model != "dcgan",
        "for a model without G's BatchNorm (dcgan's is modulated)",
    ),
    ("g.topk", lambda c: c.feature_matching, "with feature_matching, which reads no D verdict"),
    ("g.topk_decay", lambda c: c.g.topk is None, "with g.topk null"),
    ("regularize.r1_every", lambda c: c.regularize.r1_weight == 0, "with regularize.r1_weight 0"),
    ("ngf", lambda c: c.model == "mlp", "for model 'mlp' (its widths: mlp.g_hidden)"),
    ("ndf", lambda c: c.model == "mlp", "for model 'mlp' (its widths: mlp.d_hidden)"),
    ("d.norm", lambda c: c.model == "mlp", "for model 'mlp', whose D has no normalization"),
    *(
        (
            beta,
            lambda c: "adam" not in (c.optim.g_optimizer, c.optim.d_optimizer),
            "when neither optimizer is adam",
        )
        for beta in ("optim.beta1", "optim.beta2")
    ),
    ("train.eval_samples", lambda c: c.train.eval_every is None, "with train.eval_every null"),
    ("train.fid_samples", lambda c: c.train.fid_every is None, "with train.fid_every null"),
    ("train.sync_batchnorm", lambda c: c.train.nproc == 1, "with train.nproc = 1"),
    *(
        (f"translation.{f.name}", lambda c: not translates(c.model), "for a noise-to-image model")
        for f in dataclasses.fields(TranslationSection)
    ),
)


def _value(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def _check_ignored(config: Config) -> None:
    """No param is set away from its default where it would change nothing."""
    defaults = Config()
    for key, idle, why in IGNORED:
        value, default = _value(config, key), _value(defaults, key)
        if value != default and idle(config):
            raise ConfigError(
                f"params.yaml: {key} = {value!r} has no effect {why}: expected the default "
                f"{default!r}"
            )


def gan_loss(config: Config) -> str:
    """The adversarial loss training uses: `loss`, or for translators translation.gan_loss
    (auto: each paper's)."""
    if not translates(config.model):
        return config.loss
    name = config.translation.gan_loss
    return PAPER_LOSS[config.model] if name == "auto" else name


# Keys that only noise-to-image GANs read: a translator refuses them when changed.
NOISE_ONLY = (
    "loss",
    "latent",
    "n_critic",
    "n_gen",
    "g_fakes",
    "regularize.clip_value",
    "regularize.gp_weight",
    "regularize.r1_weight",
    "d.spectral_norm",
    "d.minibatch_std",
    "d.minibatch_discrimination",
    "feature_matching",
    "regularize.instance_noise",
    "optim.lr_decay",
    "optim.lr_decay_start",
    "regularize.diffaugment",
    "classes.conditional",
    "dropout",
    "g.topk",
    "regularize.progressive_bits",
)


def _check_translation(config: Config) -> None:
    """A translator refuses what only noise-to-image models read."""
    defaults = Config()
    for key in NOISE_ONLY:
        if _value(config, key) != _value(defaults, key):
            hint = " (set translation.gan_loss instead)" if key == "loss" else ""
            raise ConfigError(
                f"params.yaml: {key} = {_value(config, key)!r} applies to noise-to-image models, "
                f"not model = {config.model!r}: expected the default "
                f"{_value(defaults, key)!r}{hint}"
            )
    if config.train.max_steps is not None:
        raise ConfigError(
            f"params.yaml: train.max_steps = {config.train.max_steps} with model = "
            f"{config.model!r}: translators' lr schedules run by epochs; expected null"
        )
    if config.train.nproc > 1:
        raise ConfigError(
            f"params.yaml: train.nproc = {config.train.nproc} with model = {config.model!r}: "
            "data-parallel training covers noise-to-image models; expected 1"
        )
    snapshots = tuple(getattr(config.train, key) for key in SNAPSHOT_KEYS)
    if snapshots != (False, None, None):
        raise ConfigError(
            f"params.yaml: train.{' / '.join(SNAPSHOT_KEYS)} = {snapshots} with model = "
            f"{config.model!r}: snapshots cover noise-to-image models; expected false / null / null"
        )
    try:
        check_task(config)
    except ValueError as error:
        raise ConfigError(f"params.yaml: {error}") from error


def _check_progressive(config: Config) -> None:
    """Progressive augmentation flips D's real/fake verdict; what reads D otherwise is refused."""
    bits = config.regularize.progressive_bits
    clashes = (
        (config.classes.conditional != "none", "classes.conditional", "'none'"),
        (config.feature_matching, "feature_matching", "false"),
        (config.semi_supervised_on, "semi_supervised.labels_per_class", "null"),
    )
    for clash, key, expected in clashes:
        if bits and clash:
            raise ConfigError(
                f"params.yaml: regularize.progressive_bits = {bits} flips D's real/fake verdict, "
                f"which {key} = {_value(config, key)!r} reads otherwise: expected {key} {expected} "
                "or progressive_bits 0"
            )


def _check_semi_supervised(config: Config) -> None:
    if not config.semi_supervised_on:
        return
    per_class = config.semi_supervised.labels_per_class
    clashes = (
        (translates(config.model), f"model = {config.model!r}", "a noise-to-image model"),
        (
            config.classes.conditional != "none",
            f"classes.conditional = {config.classes.conditional!r}",
            "'none'",
        ),
        (not LOSSES[config.loss].probability, f"loss = {config.loss!r}", "'bce' or 'minimax'"),
        (config.train.nproc > 1, f"train.nproc = {config.train.nproc}", "1"),
    )
    for clash, setting, expected in clashes:
        if clash:
            raise ConfigError(
                f"params.yaml: semi_supervised.labels_per_class = {per_class} (D a K + 1-way "
                f"classifier) does not work with {setting}: expected {expected}"
            )


def from_mapping(values: Mapping[str, Any]) -> Config:
    """A params mapping validated as `load` validates params.yaml."""
    return config_from_dict(values, check_params)
