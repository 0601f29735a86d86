"""Scoring while training: same weights as without it, the best generator kept, resumable."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ganlab.data import datasets
from ganlab.data.datasets import DATASETS
from ganlab.device import resolve_precision
from ganlab.metrics import classifier
from ganlab.metrics.features import classifier_features
from ganlab.training import ema
from ganlab.training.gan import train
from ganlab.training.monitor import Monitor, Reference, load_reference, selection_note
from ganlab.training.params import from_mapping
from ganlab.training.runner import Hooks
from tests.conftest import REPO, tiny_images, tiny_params, train_on_cpu


class Interrupt(Exception):
    pass


def reference(cpu: torch.device) -> Reference:
    """An untrained classifier's features of the bar images: a fixed space to score in."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = classifier.DomainClassifier((1, 28, 28), 10).eval()
    return Reference(model, classifier_features(model, tiny_images(), cpu)[0])


def scored(**train) -> dict:
    return tiny_params(epochs=3, train={"eval_every": 2, "eval_samples": 32, **train})


def weights(result) -> list[torch.Tensor]:
    return list(result.netG.state_dict().values())


def test_scoring_leaves_the_training_itself_unchanged(tmp_path: Path, cpu):
    plain = train_on_cpu(from_mapping(tiny_params(epochs=3)), tiny_images(), tmp_path / "a")
    config = from_mapping(scored())
    result = train_on_cpu(config, tiny_images(), tmp_path / "b", reference=reference(cpu))
    assert all(torch.equal(a, b) for a, b in zip(weights(plain), weights(result), strict=True))
    assert result.history == plain.history
    assert [row[0] for row in result.evals] == [2, 4, 6, 8, 10, 12]  # 4 steps an epoch
    assert [row[1] for row in result.evals] == [1, 1, 2, 2, 3, 3]
    assert all(math.isfinite(row[3]) for row in result.evals)
    assert all(math.isnan(row[4]) for row in result.evals)  # no Inception in this reference


def test_the_best_scored_generator_is_kept_with_its_step(tmp_path: Path, cpu, monkeypatch):
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    evaluate = Monitor.evaluate

    def recording(self, step, final):
        snapshots[step] = self.state()
        return evaluate(self, step, final)

    monkeypatch.setattr(Monitor, "evaluate", recording)
    config = from_mapping(scored())
    result = train_on_cpu(config, tiny_images(), tmp_path / "a", reference=reference(cpu))
    scores = [row[3] for row in result.evals]
    assert result.best_step == result.evals[scores.index(min(scores))][0]
    best = snapshots[result.best_step]
    assert all(torch.equal(result.best_state[k], best[k]) for k in best)
    for step, state in snapshots.items():  # and no other step's weights
        if step != result.best_step:
            assert any(not torch.equal(state[k], best[k]) for k in best)


def test_resume_keeps_the_scores_and_the_best_generator(tmp_path: Path, cpu):
    config = from_mapping(scored(checkpoint_every=3))
    whole = train_on_cpu(config, tiny_images(), tmp_path / "a", reference=reference(cpu))

    def stop_at_step_7(row):
        if row["step"] >= 7:
            raise Interrupt

    path = tmp_path / "b"
    with pytest.raises(Interrupt):
        train_on_cpu(
            config,
            tiny_images(),
            path,
            reference=reference(cpu),
            hooks=Hooks(on_log=stop_at_step_7),
        )
    resumed = train_on_cpu(config, tiny_images(), path, reference=reference(cpu))
    assert resumed.resumed_from_step == 6
    assert [row[:2] + row[3:4] for row in resumed.evals] == [
        row[:2] + row[3:4] for row in whole.evals
    ]
    assert resumed.best_step == whole.best_step
    assert all(torch.equal(resumed.best_state[k], whole.best_state[k]) for k in whole.best_state)


def test_fid_every_without_eval_every_is_refused_naming_both_keys():
    from ganlab.config import ConfigError

    with pytest.raises(ConfigError, match=r"train.fid_every = 4 needs train.eval_every"):
        from_mapping(tiny_params(train={"eval_every": None, "fid_every": 4}))
    with pytest.raises(ConfigError, match=r"not a multiple of train.eval_every = 3"):
        from_mapping(tiny_params(train={"eval_every": 3, "fid_every": 4}))


@pytest.mark.parametrize(
    ("train", "calls"), [({}, [2, 4, 6, 8, 10, 12]), ({"max_steps": 7}, [2, 4, 6, 7])]
)
def test_the_last_step_is_scored_once_as_the_final_row(train, calls, tmp_path, cpu, monkeypatch):
    seen: list[tuple[int, bool]] = []
    evaluate = Monitor.evaluate

    def recording(self, step, final):
        seen.append((step, final))
        return evaluate(self, step, final)

    monkeypatch.setattr(Monitor, "evaluate", recording)
    config = from_mapping(scored(**train))
    train_on_cpu(config, tiny_images(), tmp_path / "a", reference=reference(cpu))
    assert seen == [(step, step == calls[-1]) for step in calls]  # final: Inception FID too


def test_the_best_generator_is_picked_on_training_images_no_report_uses(
    tiny_root: Path, tmp_path: Path, cpu, monkeypatch
):
    """The selection images are training images outside the FID reference (the same seeded
    draw fid_stats takes its images from), never the test split classifier FID reports on."""
    monkeypatch.setitem(DATASETS, "fashion_mnist", DATASETS["tiny"])
    config = from_mapping(tiny_params(train={"eval_every": 2}, fid={"n_real": 40}))
    train_images, _ = datasets.load_images("tiny", tiny_root, train=True)
    test_images, _ = datasets.load_images("tiny", tiny_root, train=False)
    fid_rows, selection_rows = datasets.reference_rows(len(train_images), 40)
    assert len(fid_rows) == 40 and len(selection_rows) == len(train_images) - 40
    assert not set(fid_rows.tolist()) & set(selection_rows.tolist())
    model = classifier.DomainClassifier((1, 28, 28), 10).eval()
    path = tmp_path / "classifier.pt"
    classifier.save(path, model)
    stats = tmp_path / "stats.npz"
    stats.write_bytes(b"not read without train.fid_every")
    loaded = load_reference(config, tiny_root, path, stats, (1, 28, 28), cpu)
    expected = classifier_features(loaded.classifier, train_images[selection_rows], cpu)[0]
    assert np.array_equal(loaded.real_classifier, expected)
    assert len(loaded.real_classifier) != len(test_images)
    note = selection_note(config, tiny_root)
    assert f"against {len(selection_rows)} training images outside the FID reference" in note


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # what precision: auto picks on CPUs
def test_resume_on_params_yamls_own_training_settings_is_bit_identical(
    precision, tmp_path: Path, cpu, monkeypatch
):
    """params.yaml as users run it (width 32, batch 64, EMA 0.999 with warm-up, scoring while
    training and the best generator kept), shrunk only in data and steps: a run interrupted
    after a checkpoint and resumed ends with the same G, EMA G, best G, history and scores."""
    monkeypatch.setattr(ema, "STANDING_SAMPLES", 128)  # the EMA G's BatchNorm statistics' fakes
    values = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    values["precision"] = precision
    shrunk = {"max_steps": 6, "log_every": 1, "checkpoint_every": 2, "eval_every": 2}
    values["train"] |= shrunk | {"eval_samples": 64}
    config = from_mapping(values)
    assert config.ema.decay == 0.999 and config.ema.warmup and config.batch_size == 64
    images, mode = tiny_images(256), resolve_precision(precision, cpu)
    run = functools.partial(train, config, images, device=cpu, precision=mode, run_id="run")
    whole = run(checkpoint_path=tmp_path / "a", reference=reference(cpu))

    def stop_at_step_3(row):
        if row["step"] >= 3:
            raise Interrupt

    path = tmp_path / "b"
    with pytest.raises(Interrupt):
        run(checkpoint_path=path, reference=reference(cpu), hooks=Hooks(on_log=stop_at_step_3))
    resumed = run(checkpoint_path=path, reference=reference(cpu))
    assert resumed.resumed_from_step == 2 and resumed.steps == whole.steps == 6
    assert resumed.history == whole.history
    scores = [row[:2] + row[3:4] for row in whole.evals]  # step, epoch, classifier FID
    assert [row[:2] + row[3:4] for row in resumed.evals] == scores
    assert resumed.best_step == whole.best_step
    for name in ("netG", "netD"):
        a, b = getattr(whole, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)  # netG: the EMA G, as sampled
    assert all(torch.equal(resumed.best_state[k], whole.best_state[k]) for k in whole.best_state)
