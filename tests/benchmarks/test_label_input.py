"""benchmarks/label_input.py: the within-class spread it prints, and what it draws."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import label_input  # benchmarks/ is a folder of scripts, not a package


def test_spread_is_the_mean_distance_inside_each_class():
    """A class of one repeated image spreads 0; black against white (4 pixels of -1 vs +1)
    are sqrt(4 * 2^2) = 4 apart; the figure is the mean over the classes."""
    images = torch.tensor([0, 255, 7, 7], dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    labels = torch.tensor([0, 0, 1, 1])
    assert label_input.within_class_spread(images, labels) == pytest.approx(2.0)


class LabelBlind(nn.Module):
    """A 'conditional' G that ignores the label: what a G drawing from z alone looks like."""

    def __init__(self, z_dim: int):
        super().__init__()
        self.body = nn.Linear(z_dim, 4)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(z)).view(-1, 1, 2, 2)


def test_every_class_is_drawn_from_the_same_noise():
    """Classes are compared on the same 64 noise vectors, so only the label differs."""
    images, labels = label_input.drawn(LabelBlind(8), z_dim=8, n_classes=3)
    per = label_input.PER_CLASS
    assert images.dtype == torch.uint8 and len(images) == 3 * per
    assert torch.equal(labels, torch.arange(3).repeat_interleave(per))
    assert torch.equal(images[:per], images[per : 2 * per])
    assert label_input.within_class_spread(images, labels) > 0  # the noise still varies


def test_the_preset_is_measured_as_trained_without_scoring_or_ema():
    params = label_input.params_with("acgan", {"classes.label_input": "concat"})
    assert params["classes"] == {
        **params["classes"],
        "conditional": "acgan",
        "label_input": "concat",
    }
    assert params["train"]["eval_every"] is None and params["ema"]["decay"] is None
