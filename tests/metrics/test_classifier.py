import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.data import datasets
from ganlab.metrics import classifier, fid


def test_class_coverage_known_answers():
    uniform = np.eye(10)[np.arange(1000) % 10]
    labels = np.arange(1000) % 10
    perfect = classifier.class_coverage(uniform, labels, 10)
    assert perfect["kl"] == pytest.approx(0.0, abs=1e-12)
    assert perfect["classes_covered"] == 10
    collapsed = classifier.class_coverage(np.eye(10)[np.full(1000, 3)], labels, 10)
    assert collapsed["kl"] == pytest.approx(math.log(10))
    assert collapsed["classes_covered"] == 1
    assert collapsed["fake_histogram"][3] == 1.0


@pytest.fixture
def trained(tiny_root: Path, cpu):
    images, labels = datasets.load_images("tiny", tiny_root, train=True)
    model = classifier.fit(
        images,
        labels,
        10,
        epochs=40,
        batch_size=16,
        lr=3e-3,
        seed=0,
        device=cpu,
        precision=classifier.FP32,
    )
    return model, images, labels


def test_classifier_generalizes_to_the_test_split_and_round_trips(
    trained, tiny_root: Path, tmp_path: Path, cpu
):
    model, _, _ = trained
    test_images, test_labels = datasets.load_images("tiny", tiny_root, train=False)
    assert classifier.accuracy(model, test_images, test_labels, device=cpu) >= 0.9  # unseen
    path = tmp_path / "classifier.pt"
    classifier.save(path, model)
    loaded = classifier.load(path, cpu)
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_collapsed_generator_scores_visibly_worse(trained, tiny_root: Path, cpu):
    model, _, _ = trained
    real, real_labels = datasets.load_images("tiny", tiny_root, train=False)
    collapsed = real[:1].repeat(len(real), 1, 1, 1)  # one image, over and over
    real_features, _ = classifier.outputs(model, real, device=cpu, precision=classifier.FP32)

    def scores(fake):
        features, logits = classifier.outputs(model, fake, device=cpu, precision=classifier.FP32)
        coverage = classifier.class_coverage(logits, real_labels.numpy(), 10)
        distance = fid.frechet_distance(*fid.statistics(features), *fid.statistics(real_features))
        return coverage, distance

    good_coverage, good_fid = scores(datasets.load_images("tiny", tiny_root, train=True)[0][:32])
    bad_coverage, bad_fid = scores(collapsed)
    assert bad_coverage["classes_covered"] == 1
    assert good_coverage["classes_covered"] >= 7
    assert bad_coverage["kl"] > good_coverage["kl"] + 1.0
    assert bad_fid > 2 * good_fid
