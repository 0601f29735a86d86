"""The semi-supervised GAN: a K + 1-way D learning from a few labels and G's fakes."""

from pathlib import Path

import pytest
import torch

from ganlab import checkpoint
from ganlab.config import ConfigError
from ganlab.models import build_models
from ganlab.models.semi_supervised import SemiSupervisedDiscriminator
from ganlab.training import semi_supervised
from ganlab.training.gan import history_columns_of
from ganlab.training.params import from_mapping
from ganlab.training.runner import Hooks
from tests.conftest import tiny_images, tiny_params, tiny_spec, train_on_cpu

BAR_CLASSES = torch.arange(64) % 8  # tiny_images draws a bar at 8 heights: its class


def semi_params(**overrides) -> dict:
    settings = {"semi_supervised": {"labels_per_class": 2}, "feature_matching": True}
    return tiny_params(**settings | overrides)


@pytest.mark.parametrize("model", ["dcgan", "mlp"])
def test_d_has_k_plus_1_logits_and_its_score_is_the_logit_of_real(model):
    spec = tiny_spec(z_dim=8, image_shape=(1, 28, 28), ngf=8, ndf=8, d_classes=10)
    _, netD = build_models(model, spec, "dcgan")
    assert isinstance(netD, SemiSupervisedDiscriminator)
    x = torch.randn(5, 1, 28, 28)
    logits = netD.all_logits(x)
    assert logits.shape == (5, 11) and netD.classify(x).shape == (5, 10)
    # Salimans et al.: D(x) = 1 - p(fake | x) over the K + 1-way softmax
    p_fake = logits.softmax(dim=1)[:, 10]
    torch.testing.assert_close(torch.sigmoid(netD(x)), 1 - p_fake)
    assert not hasattr(netD.base, "head")  # no unused adversarial head in the optimizer


def test_the_labeled_set_is_balanced_seeded_and_checked():
    labels = torch.arange(100) % 5
    chosen = semi_supervised.labeled_indices(labels, 3, seed=1)
    assert torch.bincount(labels[chosen]).tolist() == [3] * 5
    assert torch.equal(chosen, semi_supervised.labeled_indices(labels, 3, seed=1))
    assert not torch.equal(chosen, semi_supervised.labeled_indices(labels, 3, seed=2))
    with pytest.raises(ConfigError, match=r"semi_supervised.labels_per_class = 21.*class 0 has 20"):
        semi_supervised.labeled_indices(labels, 21, seed=1)


def test_labeled_batches_depend_on_the_step_alone():
    images, labels = tiny_images(16), torch.arange(16) % 8
    batches = semi_supervised.LabeledBatches(images, labels, batch_size=6, seed=3)
    again = semi_supervised.LabeledBatches(images, labels, batch_size=6, seed=3)
    (x5, y5), (x5_again, y5_again) = batches(5), again(5)
    assert torch.equal(x5, x5_again) and torch.equal(y5, y5_again)
    assert not torch.equal(batches(6)[1], y5)
    assert x5.shape == (6, 1, 28, 28) and x5.min() >= -1 and x5.max() <= 1


@pytest.mark.parametrize(
    "clash, expected",
    [
        ({"classes.conditional": "acgan"}, "classes.conditional = 'acgan'"),
        ({"loss": "hinge"}, "loss = 'hinge'"),
        ({"model": "pix2pix", "feature_matching": False}, "model = 'pix2pix'"),
        ({"train": {"nproc": 2}}, "train.nproc = 2"),
    ],
)
def test_settings_it_cannot_work_with_are_refused(clash, expected):
    with pytest.raises(ConfigError, match=r"semi_supervised\.labels_per_class = 2") as error:
        from_mapping(semi_params(**clash))
    assert expected in str(error.value)


def test_d_learns_the_classes_from_two_labels_each_and_reports_its_class_loss(tmp_path: Path, cpu):
    config = from_mapping(semi_params(epochs=6, lr=1e-3))
    result = train_on_cpu(config, tiny_images(), tmp_path / "c.pt", BAR_CLASSES)
    assert len(result.labeled) == 16
    class_loss = [row[history_columns_of(config).index("d_class_loss")] for row in result.history]
    assert all(loss == loss for loss in class_loss)  # reported, not NaN
    assert class_loss[-1] < class_loss[0]
    # the 48 unlabeled images too: every bar height is told apart
    accuracy = semi_supervised.test_accuracy(result.netD, tiny_images(), BAR_CLASSES, device=cpu)
    assert accuracy >= 0.9


def test_a_plain_gan_has_no_class_loss_column(tmp_path: Path, cpu):
    config = from_mapping(tiny_params(epochs=1))
    result = train_on_cpu(config, tiny_images(), tmp_path / "c")
    assert "d_class_loss" not in history_columns_of(config)
    assert len(result.history[0]) == len(history_columns_of(config))
    assert result.labeled is None


def test_the_baseline_is_the_same_network_on_the_labeled_batches_only(tmp_path: Path, cpu):
    config = from_mapping(semi_params(lr=1e-3))
    spec = tiny_spec(z_dim=16, image_shape=(1, 28, 28), ngf=8, ndf=8, d_classes=8)
    batches = semi_supervised.LabeledBatches(tiny_images(16), torch.arange(16) % 8, 16, seed=0)
    precision = semi_supervised.Precision("fp32", None)
    baseline = semi_supervised.labeled_only_baseline(
        config, spec, batches, 60, device=cpu, precision=precision
    )
    assert isinstance(baseline, SemiSupervisedDiscriminator) and not baseline.training
    accuracy = semi_supervised.test_accuracy(baseline, batches.images, batches.labels, device=cpu)
    assert accuracy == 1.0  # it learned the labeled images


def test_resume_gives_bit_identical_d(tmp_path: Path, cpu):
    config = from_mapping(semi_params(epochs=2))
    whole = train_on_cpu(config, tiny_images(), tmp_path / "a.pt", BAR_CLASSES)

    class Interrupt(Exception):
        pass

    def stop_at_step_4(row):  # mid-epoch: 4 steps an epoch, a checkpoint every 3
        if row["step"] >= 3:
            raise Interrupt

    path = tmp_path / "b.pt"
    with pytest.raises(Interrupt):
        train_on_cpu(config, tiny_images(), path, BAR_CLASSES, hooks=Hooks(on_log=stop_at_step_4))
    assert checkpoint.load(path)["progress"]["step"] == 3
    resumed = train_on_cpu(config, tiny_images(), path, BAR_CLASSES)
    assert resumed.resumed_from_step == 3
    whole_d, resumed_d = whole.netD.state_dict(), resumed.netD.state_dict()
    assert all(torch.equal(whole_d[name], resumed_d[name]) for name in whole_d)
    assert resumed.history == whole.history
