"""params.yaml's schema: frozen dataclasses, the only place a default is written.

Every key has a type and a rule; an unknown key, a wrong type or a value outside
its rule raises ConfigError naming the key, the value and what is allowed. Keys that
name a registry row (model, loss, dataset, ...) carry their registry's kind: each
registry checks them itself (`check_params` beside it), so this module imports nothing
of ganlab and a stage imports only the registries it uses.
Users change the top-level keys most (`dvc exp run -S lr=0.0005`); the sections
hold what they change less. params.yaml equals `Config()` (tests/test_config.py).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
IMAGE_SIZES = (28, 32, 64)  # what DCGAN builds natively (see models.dcgan)
LATENTS = ("normal", "uniform")
LR_DECAYS = ("none", "linear")  # lr_decay: ganlab.training.optimizers.lr_factor_by_fraction
G_FAKES = ("reuse", "fresh")  # what G's step scores: D's step's fakes, or fakes of fresh z
OPTIMIZERS = ("adam", "rmsprop", "sgd")
TASKS = ("auto", "edges", "classes")  # see ganlab.data.domains
TRANSLATION_LOSSES = ("auto", "bce", "lsgan", "hinge")


MD5 = re.compile(r"[0-9a-f]{32}")


class ConfigError(ValueError):
    """params.yaml holds an unknown key or a value outside what is allowed (stages catch it
    beside ganlab.errors.GanlabError: this module imports nothing of ganlab)."""


def _rule(default: Any, ok: Callable[[Any], bool], expected: str | Callable[[], str]) -> Any:
    return field(default=default, metadata={"ok": ok, "expected": expected})


def positive(default: Any) -> Any:
    return _rule(default, lambda v: v is None or v > 0, "a number > 0")


def at_least(minimum: int, default: Any) -> Any:
    return _rule(default, lambda v: v is None or v >= minimum, f"an integer >= {minimum}")


def in_range(low: float, high: float, default: Any, *, high_open: bool = False) -> Any:
    bracket = ")" if high_open else "]"
    return _rule(
        default,
        lambda v: low <= v < high if high_open else low <= v <= high,
        f"a number in [{low}, {high}{bracket}",
    )


def one_of(choices: Iterable[str], default: str) -> Any:
    """A name from the schema's own fixed `choices`."""
    return _rule(default, lambda v: v in choices, lambda: f"one of {sorted(choices)}")


def named(kind: str, default: Any) -> Any:
    """A row of the `kind` registry (or, for a list, rows of it): the registry checks the
    name (`check_names`), so the schema needs no registry to hold the default."""
    return field(default=default, metadata={"names": kind})


@dataclass(frozen=True)
class TrainSection:
    subset: int | None = at_least(1, None)  # train on the first N images; None = all
    log_every: int = at_least(1, 20)  # steps between rows of the loss history
    checkpoint_every: int = at_least(1, 200)  # steps between resume checkpoints
    checkpoint_minutes: float | None = positive(None)  # and/or minutes between them
    max_minutes: float | None = positive(None)  # stop training after this many minutes
    max_steps: int | None = at_least(1, None)  # train this many steps; epochs is then ignored
    compile: bool = False  # torch.compile G and D (pays a compile at start; see README)
    nproc: int = at_least(1, 1)  # processes on this machine, under torchrun (DDP)
    sync_batchnorm: bool = False  # BatchNorm statistics over all processes (CUDA only)
    # quality during training (ganlab.training.monitor): classifier FID every eval_every steps
    eval_every: int | None = at_least(1, 500)  # None = no scoring while training
    eval_samples: int = at_least(2, 1000)  # fakes per classifier-FID point
    fid_every: int | None = at_least(1, None)  # Inception FID every N steps and at the end
    fid_samples: int = at_least(2, 500)  # fakes per in-training Inception FID point
    # G and D kept as outputs (models/snapshots/) for evaluate.checkpoint to choose from
    snapshot_epochs: bool = False  # after every epoch: epoch_NNN.pt
    snapshot_every: int | None = at_least(1, None)  # every N steps: step_NNNNNNN.pt
    snapshot_minutes: float | None = positive(None)  # every N minutes of training: minute_*.pt


def widths(default: tuple[int, ...]) -> Any:
    return _rule(default, lambda v: len(v) > 0 and min(v) > 0, "a list of widths > 0")


@dataclass(frozen=True)
class MLPSection:
    """model: mlp, shaped as each classic lesson has it (see ganlab.presets)."""

    g_hidden: tuple[int, ...] = widths((32, 64, 128))  # G: z -> these -> pixels
    d_hidden: tuple[int, ...] = widths((128, 64, 32))  # D: pixels -> these -> 1 logit
    g_activation: str = named("activation", "leaky_relu")
    d_activation: str = named("activation", "leaky_relu")
    output: str = named("output", "tanh")  # tanh: data in [-1, 1] | sigmoid: in [0, 1]


@dataclass(frozen=True)
class DownloadSection:
    mirrors: tuple[str, ...] = ()  # tried before torchvision's official mirrors
    local_dirs: tuple[str, ...] = ("/usr/share/datasets/fashion-mnist",)  # tried first
    image_folder: str | None = None  # your own images, for dataset: image_folder
    # MD5s accepted besides the official ones: copies you trust (a site's repack, a private mirror)
    trusted_md5: tuple[str, ...] = _rule(
        (), lambda v: all(MD5.fullmatch(m) for m in v), "a list of 32-digit hex MD5s"
    )


@dataclass(frozen=True)
class FidSection:
    n_real: int = at_least(2, 5000)
    n_fake: int = at_least(2, 5000)
    batch_size: int = at_least(1, 50)  # pytorch-fid's; 10% faster than 100 on a 2-core Xeon
    precision: str = one_of(("bf16", "fp32"), "fp32")  # fp32 = exact, as the pytorch-fid CLI
    channels_last: bool = True
    # auto: ONNX Runtime for fp32 on CPUs (faster, same features), PyTorch on GPUs and for bf16
    runtime: str = one_of(("auto", "torch", "onnxruntime"), "auto")


@dataclass(frozen=True)
class ClassifierSection:
    epochs: int = at_least(1, 2)
    subset: int | None = at_least(1, None)  # N training images drawn by seed; None = all
    batch_size: int = at_least(1, 128)
    lr: float = positive(1e-3)
    seed: int = at_least(0, 0)


CHECKPOINTS = ("best", "last", "lowest_g_loss", "epoch")  # see EvaluateSection


@dataclass(frozen=True)
class EvaluateSection:
    """Which generator evaluate and render use: best (lowest classifier FID while training),
    last, or one of train.snapshot_epochs' snapshots: lowest_g_loss (the epoch of the lowest
    mean G loss, as the classic lab picks) or epoch (evaluate.epoch's)."""

    checkpoint: str = one_of(CHECKPOINTS, "best")
    epoch: int | None = at_least(1, None)  # checkpoint: epoch


@dataclass(frozen=True)
class SemiSupervisedSection:
    """The semi-supervised GAN (Salimans et al., 2016): D a K + 1-way classifier."""

    labels_per_class: int | None = at_least(1, None)  # labeled training images; None = off


@dataclass(frozen=True)
class RenderSection:
    n_samples: int = at_least(1, 64)  # images in the sample grid and in each progress frame
    nrow: int = at_least(1, 8)
    frame_ms: int = at_least(1, 400)
    frame_every: int | None = at_least(1, None)  # a progress frame every N steps (None: epochs)


@dataclass(frozen=True)
class TranslationSection:
    """Image-to-image translation (model: pix2pix | cyclegan); see ganlab.data.domains."""

    task: str = one_of(TASKS, "auto")  # auto: pix2pix edges (or the data's pairs), cyclegan classes
    source_class: str = "Sneaker"  # classes task: translate images of this class...
    target_class: str = "Ankle boot"  # ...into images of this one
    gan_loss: str = one_of(TRANSLATION_LOSSES, "auto")  # auto: pix2pix bce, cyclegan lsgan
    l1_weight: float = _rule(100.0, lambda v: v >= 0, "a number >= 0")  # pix2pix lambda
    cycle_weight: float = _rule(10.0, lambda v: v >= 0, "a number >= 0")  # CycleGAN lambda
    identity_weight: float = _rule(0.5, lambda v: v >= 0, "a number >= 0")  # x cycle_weight
    pool_size: int = at_least(0, 50)  # CycleGAN's history of fakes for D; 0 = none
    decay_epochs: int | None = at_least(0, None)  # linear lr decay; None = the last half
    resnet_blocks: int | None = at_least(1, None)  # CycleGAN's depth; None: by image side


@dataclass(frozen=True)
class OptimSection:
    """G's and D's optimizers and the learning-rate schedule (ganlab.training.optimizers)."""

    g_optimizer: str = one_of(OPTIMIZERS, "adam")
    d_optimizer: str = one_of(OPTIMIZERS, "adam")
    d_lr: float | None = positive(None)  # None = lr
    beta1: float = in_range(0.0, 1.0, 0.5, high_open=True)  # Adam's betas
    beta2: float = in_range(0.0, 1.0, 0.999, high_open=True)
    lr_decay: str = one_of(LR_DECAYS, "none")  # linear: lr (and d_lr) fall to 0 at the run's end
    lr_decay_start: float = in_range(0.0, 1.0, 0.0, high_open=True)  # fraction of the run at lr


@dataclass(frozen=True)
class EmaSection:
    """An exponential moving average of G's weights, sampled and scored (ganlab.training.ema)."""

    decay: float | None = _rule(0.999, lambda v: 0 < v < 1, "a number in (0, 1) or null")
    warmup: bool = True  # decay min(decay, (1 + n) / (10 + n)) after n G updates, as TensorFlow's


@dataclass(frozen=True)
class GSection:
    """G's architecture beyond its width, and which fakes its update learns from."""

    # BatchNorm's scale and shift as MLPs of z (Chen et al., 2019); on the defaults against
    # BatchNorm's constants: docs/results/default-run.md
    self_modulation: bool = True
    # top-k updates (Sinha et al., 2020): G learns from the k fakes D rates most real, k =
    # batch * max(topk_decay ** epoch, topk); null = every fake
    topk: float | None = _rule(None, lambda v: 0 < v <= 1, "a fraction in (0, 1] or null")
    topk_decay: float = _rule(0.99, lambda v: 0 < v <= 1, "a number in (0, 1]")


@dataclass(frozen=True)
class DSection:
    """D's architecture beyond its width (ganlab.models)."""

    norm: str = named("d_norm", "batch")
    spectral_norm: bool = False  # on D's layers (SNGAN)
    minibatch_std: bool = False  # a minibatch standard deviation channel
    minibatch_discrimination: bool = False  # Salimans et al. (2016): D compares each sample


@dataclass(frozen=True)
class RegularizeSection:
    """What keeps D in check: Lipschitz constraints, penalties, noise, augmentation, labels."""

    clip_value: float | None = positive(None)  # WGAN weight clipping
    gp_weight: float = _rule(0.0, lambda v: v >= 0, "a number >= 0")  # WGAN-GP lambda
    r1_weight: float = _rule(0.0, lambda v: v >= 0, "a number >= 0")  # R1 gamma on real data
    r1_every: int = at_least(1, 1)  # lazy R1: every N D steps, weighted N times (StyleGAN2: 16)
    instance_noise: float = _rule(0.0, lambda v: v >= 0, "a number >= 0")  # std, annealed to 0
    diffaugment: tuple[str, ...] = named("augmentation", ())
    real_label: float = _rule(1.0, lambda v: 0.5 < v <= 1.0, "a number in (0.5, 1.0]")
    # progressive augmentation (Zhang & Khoreva, 2019): D's input gains a random-bit channel
    # every progressive_every steps, up to progressive_bits, and D's real/fake target is
    # flipped where the bits' XOR is 1; 0 = off
    progressive_bits: int = at_least(0, 0)
    progressive_every: int | None = at_least(1, None)


@dataclass(frozen=True)
class ClassesSection:
    """How G and D use the class labels (ganlab.models.conditional, the semi-supervised D)."""

    conditional: str = named("conditioning", "none")  # class-conditional G and D
    label_input: str = named("label_input", "multiply")  # conditional G's label: z*e(y) | [z, e(y)]
    class_weight: float = _rule(1.0, lambda v: v >= 0, "a number >= 0")  # D's class loss


@dataclass(frozen=True)
class Config:
    dataset: str = named("dataset", "fashion_mnist")
    image_size: int | None = _rule(
        None, lambda v: v in IMAGE_SIZES, f"one of {list(IMAGE_SIZES)} or null (the data's own)"
    )
    model: str = named("model", "dcgan")
    loss: str = named("loss", "bce")
    lr: float = positive(2e-4)
    batch_size: int = at_least(1, 64)
    epochs: int = at_least(1, 15)
    z_dim: int = at_least(1, 100)
    seed: int = at_least(0, 42)
    latent: str = one_of(LATENTS, "normal")
    n_critic: int = at_least(1, 1)  # D updates per G update
    n_gen: int = at_least(1, 1)  # G updates per G turn (k generator steps)
    g_fakes: str = one_of(G_FAKES, "reuse")  # G's step: D's fakes again, or fresh noise
    feature_matching: bool = False  # G matches D's mean hidden features on real data
    init: str = named("init", "dcgan")
    dropout: float = in_range(0.0, 1.0, 0.0, high_open=True)
    ngf: int = at_least(1, 32)
    ndf: int = at_least(1, 32)
    precision: str = one_of(PRECISIONS, "auto")
    optim: OptimSection = field(default_factory=OptimSection)
    ema: EmaSection = field(default_factory=EmaSection)
    g: GSection = field(default_factory=GSection)
    d: DSection = field(default_factory=DSection)
    regularize: RegularizeSection = field(default_factory=RegularizeSection)
    classes: ClassesSection = field(default_factory=ClassesSection)
    mlp: MLPSection = field(default_factory=MLPSection)
    train: TrainSection = field(default_factory=TrainSection)
    download: DownloadSection = field(default_factory=DownloadSection)
    fid: FidSection = field(default_factory=FidSection)
    classifier: ClassifierSection = field(default_factory=ClassifierSection)
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)
    render: RenderSection = field(default_factory=RenderSection)
    semi_supervised: SemiSupervisedSection = field(default_factory=SemiSupervisedSection)
    translation: TranslationSection = field(default_factory=TranslationSection)

    @property
    def semi_supervised_on(self) -> bool:
        """True when D learns the classes from semi_supervised.labels_per_class labels."""
        return self.semi_supervised.labels_per_class is not None

    def training_fingerprint(self) -> str:
        """Hash of everything that shapes training; a checkpoint resumes only under the same one."""
        relevant = {k: v for k, v in dataclasses.asdict(self).items() if k not in _NOT_TRAINING}
        # nproc: the global batch and the data order per step; the eval keys: the best generator
        # the snapshot keys: which snapshots a resumed run has
        shaping = ("subset", "nproc", "max_steps", *SNAPSHOT_KEYS, *EVAL_KEYS)
        relevant["train"] = {k: v for k, v in relevant["train"].items() if k in shaping}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


# top-level keys of params files older than the sections, and where each one lives now
MOVED = {
    **{key: f"optim.{key}" for key in ("g_optimizer", "d_optimizer", "d_lr", "beta1", "beta2")},
    "lr_decay": "optim.lr_decay",
    "lr_decay_start": "optim.lr_decay_start",
    "ema_decay": "ema.decay",
    "ema_warmup": "ema.warmup",
    "d_norm": "d.norm",
    **{key: f"d.{key}" for key in ("spectral_norm", "minibatch_std", "minibatch_discrimination")},
    **{
        key: f"regularize.{key}"
        for key in ("clip_value", "gp_weight", "r1_weight", "instance_noise", "diffaugment")
    },
    "real_label": "regularize.real_label",
    **{key: f"classes.{key}" for key in ("conditional", "label_input", "class_weight")},
}
EVAL_KEYS = ("eval_every", "eval_samples", "fid_every", "fid_samples")
SNAPSHOT_KEYS = ("snapshot_epochs", "snapshot_every", "snapshot_minutes")
_NOT_TRAINING = {"download", "fid", "classifier", "evaluate", "render"}


def _describe(annotation: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(_describe(a) for a in inner) + " or null"
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        return "a list of integers" if item is int else "a list of strings"
    return names.get(annotation, str(annotation))


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check a YAML value against a field's type; return it in the field's type."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _coerce(key, value, inner[0])
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        if isinstance(value, list | tuple) and all(
            isinstance(v, item) and not isinstance(v, bool) for v in value
        ):
            return tuple(value)
    elif annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and FLOAT.fullmatch(value.strip()):
            # YAML 1.1 reads 5e-5 (no dot) as a string; `dvc exp run -S lr=5e-5` means a number
            return float(value)
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, annotation):
        return value
    raise ConfigError(
        f"params.yaml: {key} = {value!r} has the wrong type: expected {_describe(annotation)}"
    )


def _build(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"params.yaml: {prefix.rstrip('.') or 'the file'} must be a mapping of keys"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    moved = [key for key in unknown if not prefix and key in MOVED]
    if moved:
        raise ConfigError(
            f"params.yaml: unknown key {moved[0]!r}: it moved into a section, expected "
            f"{MOVED[moved[0]]!r} (as `dvc exp run -S {MOVED[moved[0]]}=...`)"
        )
    if unknown:
        raise ConfigError(
            f"params.yaml: unknown key {prefix + unknown[0]!r}; known keys here: {sorted(fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        key = prefix + name
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation):
            kwargs[name] = _build(annotation, value or {}, key + ".")
            continue
        value = _coerce(key, value, annotation)
        rule = fields[name].metadata
        if "ok" in rule and value is not None and not rule["ok"](value):
            expected = rule["expected"]() if callable(rule["expected"]) else rule["expected"]
            raise ConfigError(f"params.yaml: {key} = {value!r} is not allowed: expected {expected}")
        kwargs[name] = value
    return cls(**kwargs)


def _check_combinations(config: Config) -> None:
    """Values that are each fine but can't work together (those that need a registry's facts
    are checked beside it: ganlab.training.params)."""
    _check_regularizers(config)
    if config.model != "mlp" and config.mlp != MLPSection():
        changed = next(
            f.name
            for f in dataclasses.fields(MLPSection)
            if getattr(config.mlp, f.name) != getattr(MLPSection(), f.name)
        )
        raise ConfigError(
            f"params.yaml: mlp.{changed} = {getattr(config.mlp, changed)!r} shapes model 'mlp', "
            f"not model = {config.model!r}: expected model 'mlp' or the default "
            f"{getattr(MLPSection(), changed)!r}"
        )
    if config.fid.runtime == "onnxruntime" and config.fid.precision != "fp32":
        raise ConfigError(
            f"params.yaml: fid.runtime = 'onnxruntime' runs the fp32 network only, not "
            f"fid.precision = {config.fid.precision!r}: expected fid.precision fp32 or "
            "fid.runtime torch (or auto)"
        )
    subset = config.train.subset
    if subset is not None and subset < config.batch_size:
        raise ConfigError(
            f"params.yaml: train.subset = {subset} is smaller than batch_size = "
            f"{config.batch_size}: expected train.subset >= batch_size (or null for all images)"
        )
    classifier = config.classifier
    if classifier.subset is not None and classifier.subset < classifier.batch_size:
        raise ConfigError(
            f"params.yaml: classifier.subset = {classifier.subset} is smaller than "
            f"classifier.batch_size = {classifier.batch_size}: expected classifier.subset >= "
            "classifier.batch_size (or null for all images)"
        )
    _check_evaluation(config.train)
    _check_checkpoint_choice(config)


def _check_regularizers(config: Config) -> None:
    """The critic's constraints and progressive augmentation's schedule."""
    lipschitz = (
        config.regularize.clip_value is not None
        or config.regularize.gp_weight > 0
        or config.d.spectral_norm
    )
    if config.loss == "wasserstein" and not lipschitz:
        raise ConfigError(
            "params.yaml: loss = 'wasserstein' needs a Lipschitz critic: expected "
            "regularize.clip_value (WGAN), regularize.gp_weight > 0 (WGAN-GP) or "
            "d.spectral_norm: true"
        )
    if config.regularize.clip_value is not None and config.regularize.gp_weight > 0:
        raise ConfigError(
            f"params.yaml: regularize.clip_value = {config.regularize.clip_value} and "
            f"regularize.gp_weight = {config.regularize.gp_weight} are two Lipschitz "
            "constraints: expected one of them"
        )
    if config.regularize.gp_weight > 0 and config.d.norm == "batch" and config.model != "mlp":
        raise ConfigError(
            "params.yaml: d.norm = 'batch' with regularize.gp_weight > 0: the gradient penalty "
            "is per sample and BatchNorm mixes samples; expected d.norm 'layer' or 'none'"
        )
    regularize = config.regularize
    if (regularize.progressive_bits > 0) != (regularize.progressive_every is not None):
        raise ConfigError(
            f"params.yaml: regularize.progressive_bits = {regularize.progressive_bits} with "
            f"regularize.progressive_every = {regularize.progressive_every}: expected both set "
            "(bits > 0 and the steps between them) or bits 0 and every null"
        )


def _check_checkpoint_choice(config: Config) -> None:
    choice, epoch = config.evaluate.checkpoint, config.evaluate.epoch
    if choice in ("lowest_g_loss", "epoch") and not config.train.snapshot_epochs:
        raise ConfigError(
            f"params.yaml: evaluate.checkpoint = {choice!r} picks one of the per-epoch "
            "snapshots: expected train.snapshot_epochs: true"
        )
    if (choice == "epoch") != (epoch is not None):
        raise ConfigError(
            f"params.yaml: evaluate.epoch = {epoch} with evaluate.checkpoint = {choice!r}: "
            "expected an epoch number exactly when checkpoint is 'epoch'"
        )
    if epoch is not None and config.train.max_steps is None and epoch > config.epochs:
        raise ConfigError(
            f"params.yaml: evaluate.epoch = {epoch} but training runs epochs = {config.epochs}: "
            f"expected an epoch in 1..{config.epochs}"
        )


def _check_evaluation(train: TrainSection) -> None:
    if train.fid_every is not None and train.eval_every is None:
        raise ConfigError(
            f"params.yaml: train.fid_every = {train.fid_every} needs train.eval_every: expected "
            "eval_every set (fid_every a multiple of it) or fid_every null"
        )
    if train.fid_every is not None and train.fid_every % train.eval_every:
        raise ConfigError(
            f"params.yaml: train.fid_every = {train.fid_every} is not a multiple of "
            f"train.eval_every = {train.eval_every}: expected a multiple, so both scores "
            "share a row"
        )


Check = Callable[[Config], None]


def config_from_dict(values: Mapping[str, Any], *checks: Check) -> Config:
    """Validate a params mapping (as read from YAML) into a Config; then each registry's
    `check_params` among `checks` checks the names and combinations it knows."""
    config = _build(Config, values)
    _check_combinations(config)
    for check in checks:
        check(config)
    return config


def with_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """params with each override set as `dvc exp run -S` sets it: a dotted key
    (`optim.beta1`) sets a key inside its section, a mapping value merges into the section."""
    result = copy.deepcopy(dict(params))
    for key, value in overrides.items():
        *sections, name = key.split(".")
        target = result
        for section in sections:
            target = target.setdefault(section, {})
        if isinstance(value, Mapping) and isinstance(target.get(name), Mapping):
            target[name] = with_overrides(target[name], value)
        else:
            target[name] = copy.deepcopy(value)
    return result


def load_config(path: str | Path = "params.yaml", *checks: Check) -> Config:
    """Read and validate params.yaml (see config_from_dict); raise ConfigError before any work
    starts."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: expected the pipeline's params file")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    return config_from_dict(values or {}, *checks)


def check_names(config: Config, registries: Mapping[str, Collection[str]]) -> None:
    """Every key of a kind in `registries` names rows of that registry; a ConfigError names
    the key, the value and the registry's names."""
    for key, kind, value in _named_values(config, ""):
        if kind not in registries:
            continue
        choices = registries[kind]
        wrong = [v for v in (value if isinstance(value, tuple) else (value,)) if v not in choices]
        if wrong:
            raise ConfigError(
                f"params.yaml: {key} = {value!r} is not allowed: expected "
                f"{'names from' if isinstance(value, tuple) else 'one of'} {sorted(choices)}"
            )


def _named_values(section: Any, prefix: str) -> Iterable[tuple[str, str, Any]]:
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        if dataclasses.is_dataclass(value):
            yield from _named_values(value, f"{prefix}{item.name}.")
        elif "names" in item.metadata:
            yield prefix + item.name, item.metadata["names"], value


def flatten(config: Config) -> dict[str, Any]:
    """Every param as a flat key -> value mapping (sections dotted), as MLflow params want."""
    flat: dict[str, Any] = {}

    def walk(obj: Mapping[str, Any], prefix: str) -> None:
        for key, value in obj.items():
            if isinstance(value, Mapping):
                walk(value, f"{prefix}{key}.")
            else:
                flat[prefix + key] = list(value) if isinstance(value, tuple) else value

    walk(dataclasses.asdict(config), "")
    return flat
