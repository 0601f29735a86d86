import ast
import dataclasses
from pathlib import Path

import pytest
import yaml

from ganlab.config import (
    Config,
    ConfigError,
    config_from_dict,
    flatten,
    load_config,
    with_overrides,
)
from ganlab.training.params import from_mapping
from tests.conftest import REPO


def test_repo_params_load_with_top_level_lr():
    config = load_config(REPO / "params.yaml")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert "lr" in raw  # `dvc exp run -S lr=0.0005` needs a top-level key
    assert config.lr == pytest.approx(raw["lr"])
    assert config.dataset == "fashion_mnist"


def test_params_yaml_is_the_schema_defaults_key_for_key():
    """The schema is the only place a default is written; params.yaml spells the same values."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    written, defaults = flatten(config_from_dict(raw)), flatten(Config())
    differing = {k: (written[k], defaults[k]) for k in defaults if written[k] != defaults[k]}
    assert differing == {}, "params.yaml value, schema default"
    raw_keys = {
        f"{key}.{inner}" if isinstance(value, dict) else key
        for key, value in raw.items()
        for inner in (value if isinstance(value, dict) else [None])
    }
    assert raw_keys == set(defaults)


def test_the_schema_imports_nothing_of_ganlab():
    tree = ast.parse((REPO / "src/ganlab/config.py").read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.split(".")[0] == "ganlab"]


def _named_keys(section: type, prefix: str = "") -> list[tuple[str, bool]]:
    """(dotted key, is a list) of every schema key that names a registry row."""
    keys = []
    for item in dataclasses.fields(section):
        if dataclasses.is_dataclass(item.default_factory if callable(item.default_factory) else 0):
            keys += _named_keys(item.default_factory, f"{prefix}{item.name}.")
        elif "names" in item.metadata:
            keys.append((prefix + item.name, isinstance(item.default, tuple)))
    return keys


@pytest.mark.parametrize(("key", "is_list"), _named_keys(Config))
def test_every_registry_name_is_checked_by_its_registry(key, is_list):
    section, _, name = key.rpartition(".")
    value = ["no-such-row"] if is_list else "no-such-row"
    values = {section: {name: value}} if section else {name: value}
    with pytest.raises(ConfigError, match=rf"{key} = .*no-such-row.*expected"):
        from_mapping(values)


def test_empty_params_give_the_documented_defaults():
    config = config_from_dict({})
    assert config == Config()
    assert (config.optim.beta1, config.optim.beta2) == (0.5, 0.999)


def test_ints_are_accepted_for_floats_and_lists_become_tuples():
    config = config_from_dict({"lr": 1, "download": {"mirrors": ["http://example.org/"]}})
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert config.download.mirrors == ("http://example.org/",)


BAD_PARAMS = [
    ({"lr": 0}, ["lr", "0", "> 0"]),
    ({"lr": -0.1}, ["lr", "-0.1"]),
    ({"lr": "fast"}, ["lr", "'fast'", "a number"]),
    ({"batch_size": 0}, ["batch_size", "0", ">= 1"]),
    ({"batch_size": 2.5}, ["batch_size", "2.5", "an integer"]),
    ({"batch_size": True}, ["batch_size", "True", "an integer"]),
    ({"epochs": 0}, ["epochs", ">= 1"]),
    ({"model": "dcgn"}, ["model", "'dcgn'", "dcgan", "mlp"]),
    ({"dataset": "imagenet"}, ["dataset", "'imagenet'", "fashion_mnist", "mnist"]),
    ({"loss": "wasserstein-ish"}, ["loss", "bce"]),
    ({"optim.beta1": 1.0}, ["optim.beta1", "1.0", "[0.0, 1.0)"]),
    ({"regularize.real_label": 0.3}, ["regularize.real_label", "0.3", "(0.5, 1.0]"]),
    ({"precision": "fp8"}, ["precision", "'fp8'", "bf16"]),
    ({"latent": "cauchy"}, ["latent", "normal", "uniform"]),
    ({"optim.d_optimizer": "adagrad"}, ["optim.d_optimizer", "adam", "rmsprop", "sgd"]),
    ({"n_critic": 0}, ["n_critic", ">= 1"]),
    ({"ema.decay": 1.0}, ["ema.decay", "(0, 1)"]),
    (
        {"regularize.diffaugment": ["flip"]},
        ["regularize.diffaugment", "'flip'", "color", "cutout", "translation"],
    ),
    ({"d.norm": "instance"}, ["d.norm", "batch", "layer", "none"]),
    (
        {"loss": "wasserstein"},
        ["wasserstein", "Lipschitz", "regularize.clip_value", "regularize.gp_weight"],
    ),
    (
        {
            "loss": "wasserstein",
            "regularize.clip_value": 0.01,
            "regularize.gp_weight": 10,
            "d.norm": "layer",
        },
        ["clip_value = 0.01", "gp_weight = 10.0", "one of them"],
    ),
    (
        {"regularize.gp_weight": 10},
        ["d.norm = 'batch'", "regularize.gp_weight", "'layer' or 'none'"],
    ),
    ({"lrr": 0.1}, ["unknown key", "'lrr'", "lr"]),
    ({"fid": {"n_fake": 1}}, ["fid.n_fake", "1", ">= 2"]),
    ({"fid": {"precision": "fp16"}}, ["fid.precision", "bf16", "fp32"]),
    (
        {"fid": {"runtime": "onnxruntime", "precision": "bf16"}},
        ["fid.runtime = 'onnxruntime'", "fid.precision = 'bf16'", "fp32"],
    ),
    ({"fid": {"n_reel": 5}}, ["unknown key", "fid.n_reel", "n_real"]),
    ({"train": {"subset": 0}}, ["train.subset", "0"]),
    ({"train": 5}, ["train", "mapping"]),
    ({"download": {"mirrors": "http://x/"}}, ["download.mirrors", "a list of strings"]),
    ({"download": {"trusted_md5": ["abc"]}}, ["download.trusted_md5", "32-digit hex MD5s"]),
    ({"train": {"checkpoint_minutes": 0}}, ["train.checkpoint_minutes", "> 0"]),
    (
        {
            "loss": "wasserstein",
            "regularize.clip_value": 0.01,
            "n_critic": 5,
            "train": {"max_steps": 2},
        },
        ["train.max_steps = 2", "n_critic = 5", "never update"],
    ),
    ({"batch_size": 64, "train": {"subset": 10}}, ["train.subset = 10", "batch_size = 64"]),
    (
        {"classifier": {"subset": 100}},
        ["classifier.subset = 100", "classifier.batch_size = 128"],
    ),
    ({"optim.lr_decay": "cosine"}, ["optim.lr_decay", "'cosine'", "none", "linear"]),
    ({"optim.lr_decay_start": 1.0}, ["optim.lr_decay_start", "1.0", "[0.0, 1.0)"]),
]


@pytest.mark.parametrize(("params", "named"), BAD_PARAMS)
def test_bad_params_name_key_value_and_what_is_allowed(params, named):
    with pytest.raises(ConfigError) as error:
        from_mapping(with_overrides({}, params))  # dotted keys set sections, as `-S` does
    message = str(error.value)
    assert message.startswith("params.yaml")
    for part in named:
        assert part in message


def test_missing_and_malformed_files_are_clear(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("lr: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_flatten_gives_every_param_once_with_dotted_sections():
    flat = flatten(Config())
    assert flat["lr"] == 2e-4
    assert flat["fid.n_real"] == 5000
    assert flat["download.local_dirs"] == ["/usr/share/datasets/fashion-mnist"]
    assert not any(isinstance(value, dict) for value in flat.values())


def test_training_fingerprint_ignores_evaluation_params_only():
    base = config_from_dict({})
    assert (
        base.training_fingerprint()
        == config_from_dict({"fid": {"n_fake": 10}}).training_fingerprint()
    )
    assert (
        base.training_fingerprint()
        == config_from_dict({"train": {"log_every": 7}}).training_fingerprint()
    )
    assert base.training_fingerprint() != config_from_dict({"lr": 1e-3}).training_fingerprint()


def test_exponent_without_a_dot_is_a_number_as_users_type_it():
    # YAML 1.1 (PyYAML, DVC's -S) reads 5e-5 as the string '5e-05'
    config = config_from_dict({"lr": "5e-05", "optim": {"d_lr": "2E-4"}})
    assert (config.lr, config.optim.d_lr) == (5e-5, 2e-4)
    with pytest.raises(ConfigError, match=r"lr = 'fast' has the wrong type: expected a number"):
        config_from_dict({"lr": "fast"})


def test_params_yaml_holds_every_key_the_config_has():
    """`dvc exp run -S key=value` overrides only keys params.yaml has, and DVC tracks only those."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    written = set(flatten(config_from_dict(raw)))
    present = {
        key
        for key in written
        if key.split(".")[0] in raw
        and (("." not in key) or key.split(".", 1)[1] in (raw[key.split(".")[0]] or {}))
    }
    assert written - present == set()


# (params that make the key idle, the key's non-default value, params where it has an effect)
IGNORED_CASES = {
    "regularize.real_label": ({"loss": "hinge"}, 0.9, {"loss": "lsgan"}),
    "regularize.r1_every": ({}, 16, {"regularize.r1_weight": 1.0}),
    "g.self_modulation": ({"model": "mlp", "ngf": 32, "ndf": 32}, False, {"model": "dcgan"}),
    "g.topk": ({"feature_matching": True}, 0.5, {}),
    "g.topk_decay": ({}, 0.9, {"g.topk": 0.5}),
    "optim.lr_decay_start": ({}, 0.5, {"optim.lr_decay": "linear"}),
    "ema.warmup": ({"ema.decay": None}, False, {"ema.decay": 0.99}),
    "classes.class_weight": (
        {"classes.conditional": "projection"},
        2.0,
        {"classes.conditional": "acgan"},
    ),
    "classes.label_input": ({}, "concat", {"classes.conditional": "acgan"}),
    "z_dim": ({"model": "pix2pix"}, 64, {"model": "dcgan"}),
    "ngf": ({"model": "mlp"}, 64, {"model": "dcgan"}),
    "ndf": ({"model": "mlp"}, 64, {"model": "dcgan"}),
    "d.norm": ({"model": "mlp"}, "layer", {"model": "dcgan"}),
    "optim.beta1": (
        {"optim.g_optimizer": "sgd", "optim.d_optimizer": "rmsprop"},
        0.0,
        {"optim.d_optimizer": "adam"},
    ),
    "optim.beta2": (
        {"optim.g_optimizer": "sgd", "optim.d_optimizer": "sgd"},
        0.9,
        {"optim.g_optimizer": "adam"},
    ),
    "train.eval_samples": ({"train": {"eval_every": None}}, 200, {"train": {"eval_every": 10}}),
    "train.fid_samples": ({}, 200, {"train": {"fid_every": 500}}),
    "train.sync_batchnorm": ({}, True, {"train": {"nproc": 2}}),
    "translation.l1_weight": ({}, 10.0, {"model": "pix2pix"}),
    "translation.pool_size": ({"model": "dcgan"}, 0, {"model": "cyclegan"}),
}


def _with(key: str, value, params: dict) -> dict:
    return with_overrides({}, {**params, key: value})  # dotted keys set sections


@pytest.mark.parametrize("key", IGNORED_CASES)
def test_a_param_that_would_change_nothing_is_refused_naming_it(key):
    idle, value, used = IGNORED_CASES[key]
    with pytest.raises(ConfigError, match=rf"{key} = .* has no effect .*expected the default"):
        from_mapping(_with(key, value, idle))
    from_mapping(_with(key, value, used))  # where it has an effect, it is taken


def test_every_ignorable_param_has_a_case():
    from ganlab.training.params import IGNORED

    assert {key for key, _, _ in IGNORED if not key.startswith("translation.")} <= set(
        IGNORED_CASES
    )


def test_a_key_that_moved_into_a_section_names_where_it_lives_now():
    with pytest.raises(ConfigError, match=r"'ema_decay': it moved .*expected 'ema.decay'"):
        config_from_dict({"ema_decay": 0.99})


def test_overrides_set_keys_inside_sections_as_dvc_exp_run_does():
    params = {"lr": 1.0, "optim": {"beta1": 0.5, "beta2": 0.999}}
    changed = with_overrides(params, {"optim.beta1": 0.0, "ema": {"decay": None}, "lr": 2.0})
    assert changed == {"lr": 2.0, "optim": {"beta1": 0.0, "beta2": 0.999}, "ema": {"decay": None}}
    assert params["optim"]["beta1"] == 0.5  # the input is left as it was


PROGRESSIVE = {"regularize.progressive_bits": 2, "regularize.progressive_every": 100}


@pytest.mark.parametrize(
    ("clash", "key"),
    [
        ({"classes.conditional": "acgan"}, "classes.conditional"),
        ({"feature_matching": True}, "feature_matching"),
        ({"semi_supervised.labels_per_class": 2}, "semi_supervised.labels_per_class"),
    ],
)
def test_progressive_augmentation_refuses_what_reads_ds_verdict_otherwise(clash, key):
    from_mapping(with_overrides({}, PROGRESSIVE))  # alone, it is taken
    with pytest.raises(ConfigError, match=rf"progressive_bits = 2 flips .*{key} = "):
        from_mapping(with_overrides({}, {**PROGRESSIVE, **clash}))


@pytest.mark.parametrize(
    "half", [{"regularize.progressive_bits": 2}, {"regularize.progressive_every": 100}]
)
def test_progressive_augmentation_needs_its_bits_and_their_schedule(half):
    with pytest.raises(ConfigError, match="expected both set"):
        from_mapping(with_overrides({}, half))
