"""pix2pix and CycleGAN: networks, tasks, the training loop and its checkpoints, on tiny data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab import sampling
from ganlab.config import ConfigError
from ganlab.data import domains
from ganlab.models import TranslatorSpec, build_translator
from ganlab.models.translation import PatchDiscriminator, ResnetGenerator, UNetGenerator
from ganlab.training import translation
from ganlab.training.params import from_mapping
from ganlab.training.runner import Hooks, history_columns
from tests.conftest import FP32, tiny_params


def translation_params(model: str, **overrides) -> dict:
    """Tiny widths and depth: these tests check behaviour, not image quality."""
    settings = {"resnet_blocks": 1, **overrides.pop("translation", {})}
    return tiny_params(dataset="tiny", model=model, batch_size=4, translation=settings, **overrides)


@pytest.mark.parametrize(("channels", "side"), [(1, 28), (3, 32), (3, 64)])
def test_generators_keep_the_input_shape_and_range(channels: int, side: int):
    x = torch.rand(2, channels, side, side) * 2 - 1
    for net in (UNetGenerator(channels, side, ngf=8), ResnetGenerator(channels, ngf=8, n_blocks=2)):
        y = net.eval()(x)
        assert y.shape == x.shape
        assert y.abs().max() <= 1


def test_patchgan_judges_patches_and_pix2pix_sees_the_input_too():
    # 70 x 70 PatchGAN at 256 pixels: 3 stride-2 layers give a 30 x 30 grid of verdicts.
    assert PatchDiscriminator(3, 256, ndf=8, norm="batch")(torch.zeros(1, 3, 256, 256)).shape == (
        1,
        1,
        30,
        30,
    )
    assert PatchDiscriminator(1, 28, ndf=8, norm="batch")(torch.zeros(2, 1, 28, 28)).shape[-1] > 1
    nets = build_translator(
        "pix2pix", TranslatorSpec(1, 28, ngf=8, ndf=8, resnet_blocks=1), "dcgan"
    )
    assert nets["D"].net[0].in_channels == 2  # (input, output) stacked
    assert set(build_translator("cyclegan", TranslatorSpec(1, 28, 8, 8, 1), "dcgan")) == {
        "G",
        "F",
        "D",
        "D_source",
    }


def test_unet_skip_connections_carry_detail_the_bottleneck_cannot():
    """A U-Net trained briefly to copy its input beats what a 1 x 1 bottleneck alone allows."""
    torch.manual_seed(0)
    net = UNetGenerator(1, 28, ngf=8, dropout=0.0)
    images = torch.rand(32, 1, 28, 28) * 2 - 1
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        loss = (net(images) - images).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.15  # random pixels: only skip connections can carry them


def test_edge_maps_outline_shapes():
    image = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    image[..., 8:20, 8:20] = 200
    edges = domains.edge_maps(image)
    assert edges.shape == image.shape and edges.dtype == torch.uint8
    assert set(edges.unique().tolist()) == {0, 255}
    assert edges[0, 0, 14, 8] == 255 or edges[0, 0, 14, 7] == 255  # the square's left side
    assert edges[0, 0, 14, 14] == 0 and edges[0, 0, 2, 2] == 0  # inside and far outside


def test_classes_task_takes_the_named_classes(tiny_root: Path):
    config = from_mapping(
        translation_params("cyclegan", translation={"source_class": "0", "target_class": "1"})
    )
    task = domains.load_domains(config, tiny_root, train=True)
    assert not task.paired and task.target_class == 1
    from ganlab.data import datasets

    images, labels = datasets.load_images("tiny", tiny_root)
    assert torch.equal(task.source, images[labels == 0])
    assert torch.equal(task.target, images[labels == 1])


def test_pix2pix_gets_edges_paired_with_their_images(tiny_root: Path):
    config = from_mapping(translation_params("pix2pix"))
    assert domains.task_of(config) == "edges"
    task = domains.load_domains(config, tiny_root, train=False, limit=5)
    assert task.paired and len(task.source) == len(task.target) == 5
    assert torch.equal(task.source, domains.edge_maps(task.target))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"translation": {"task": "classes"}}, r"model = 'pix2pix' learns from pairs"),
        ({"loss": "lsgan"}, r"loss = 'lsgan' applies to noise-to-image.*translation.gan_loss"),
        ({"train": {"nproc": 2}}, r"train.nproc = 2"),
        (
            {
                "dataset": "fashion_mnist",
                "model": "cyclegan",
                "translation": {"source_class": "Boot"},
            },
            r"translation.source_class = 'Boot'.*'Ankle boot'",
        ),
        (
            {
                "dataset": "fashion_mnist",
                "model": "cyclegan",
                "translation": {"source_class": "bag", "target_class": "Bag"},
            },
            r"both 'Bag'",
        ),
    ],
)
def test_impossible_translation_params_are_refused_by_name(overrides: dict, message: str):
    params = tiny_params(model="pix2pix")
    for key, value in overrides.items():
        params[key] = {**params.get(key, {}), **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError, match=message):
        from_mapping(params)


def test_image_pool_mixes_in_older_fakes_once_full():
    torch.manual_seed(0)
    pool = translation.ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: fakes pass straight through
    later = pool.query(torch.full((64, 1, 1, 1), 100.0))
    old = (later < 100).sum().item()
    assert 0 < old < 64  # about half come from the history
    assert len(pool.images) == 4
    assert translation.ImagePool(0).query(first) is first


def test_learning_rate_decays_linearly_over_the_last_epochs():
    factors = [translation.lr_factor_by_epoch(epoch, 4, 2) for epoch in range(4)]
    assert factors == [1.0, 1.0, pytest.approx(2 / 3), pytest.approx(1 / 3)]
    assert translation.lr_factor_by_epoch(0, 3, 0) == 1.0
    # CycleGAN's 100 + 100 epochs: full rate until epoch 100, then down towards 0.
    assert translation.lr_factor_by_epoch(99, 200, None) == 1.0
    assert translation.lr_factor_by_epoch(199, 200, None) == pytest.approx(1 / 101)


def _train(config, task, tmp_path: Path, hooks: Hooks | None = None):
    return translation.train_translator(
        config,
        task,
        device=torch.device("cpu"),
        precision=FP32,
        checkpoint_path=tmp_path / "train.pt",
        run_id="test",
        hooks=hooks,
    )


@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_a_few_steps_train_with_finite_losses(model: str, tiny_root: Path, tmp_path: Path):
    config = from_mapping(
        translation_params(model, translation={"source_class": "0", "target_class": "1"})
    )
    task = domains.load_domains(config, tiny_root)
    result = _train(config, task, tmp_path)
    assert result.steps > 0 and result.epochs == 2
    for row in result.history:
        assert all(torch.isfinite(torch.tensor(row))), row
    columns = sampling.n_columns(model, task.paired)
    assert columns == (3 if model == "pix2pix" else 3 + task.paired)
    examples = min(translation.N_PROGRESS_EXAMPLES, len(task.source))
    assert result.frames[-1].shape == (examples * columns, 1, 28, 28)
    translated = sampling.translate(
        result.nets["G"], task.source[:3], device=torch.device("cpu"), precision=FP32
    )
    assert translated.shape == task.source[:3].shape and translated.dtype == torch.uint8


def test_cycle_loss_falls_when_overfitting_a_few_images(tiny_root: Path, tmp_path: Path):
    config = from_mapping(
        translation_params(
            "cyclegan",
            epochs=12,
            lr=2e-3,
            train={"log_every": 2},
            translation={"source_class": "0", "target_class": "1", "decay_epochs": 0},
        )
    )
    task = domains.load_domains(config, tiny_root, limit=8)
    history = _train(config, task, tmp_path).history
    recon = [row[history_columns(translation.TranslationStep).index("recon_l1")] for row in history]
    assert recon[-1] < 0.5 * recon[0], recon


def test_resume_after_an_interruption_matches_an_uninterrupted_run(tiny_root: Path, tmp_path: Path):
    params = translation_params(
        "cyclegan",
        epochs=2,
        train={"checkpoint_every": 3, "log_every": 1},
        translation={"source_class": "0", "target_class": "1", "pool_size": 2},
    )
    config = from_mapping(params)
    task = domains.load_domains(config, tiny_root, limit=12)
    straight = _train(config, task, tmp_path / "a")

    def stop_at_step_4(row: dict[str, float]) -> None:
        if row["step"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(config, task, tmp_path / "b", Hooks(on_log=stop_at_step_4))
    resumed = _train(config, task, tmp_path / "b")
    assert resumed.resumed_from_step == 3
    for name, net in straight.nets.items():
        pairs = zip(
            net.state_dict().values(), resumed.nets[name].state_dict().values(), strict=True
        )
        for a, b in pairs:
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def _solid(color: tuple[int, int, int], size: tuple[int, int]):
    from PIL import Image

    return Image.new("RGB", size, color)


def test_cyclegan_zip_layout_downloads_and_reads_as_two_domains(served, tmp_path: Path):
    """horse2zebra.zip as its authors publish it: trainA, trainB, testA, testB folders."""
    import zipfile

    from ganlab.data import datasets

    folder, url = served
    counts = {"trainA": 3, "trainB": 2, "testA": 1, "testB": 1}
    colors = {"A": (200, 30, 30), "B": (30, 30, 200)}
    with zipfile.ZipFile(folder / "horse2zebra.zip", "w") as archive:
        for split, n in counts.items():
            for i in range(n):
                path = tmp_path / f"{split}_{i}.jpg"
                _solid(colors[split[-1]], (256, 256)).save(path)
                archive.write(path, f"horse2zebra/{split}/n{i:04d}.jpg")
    root = tmp_path / "data"
    sources = datasets.download("cyclegan_horse2zebra", root, mirrors=[url])
    assert "no published checksum" in sources["horse2zebra.zip"]
    datasets.verify("cyclegan_horse2zebra", root)

    images, labels = datasets.load_images("cyclegan_horse2zebra", root, train=True, size=32)
    assert images.shape == (5, 3, 32, 32) and labels.tolist() == [0, 0, 0, 1, 1]
    params = tiny_params(
        dataset="cyclegan_horse2zebra",
        model="cyclegan",
        image_size=32,
        batch_size=1,
        translation={"source_class": "horse", "target_class": "zebra"},
    )
    task = domains.load_domains(from_mapping(params), root, train=False)
    assert task.names == ("horse", "zebra") and not task.paired
    assert task.source[0, 0].float().mean() > task.source[0, 2].float().mean()  # red horses


def test_pix2pix_tarball_layout_reads_as_aligned_pairs(served, tmp_path: Path):
    """facades.tar.gz: train/val/test folders of A | B images side by side."""
    import tarfile

    from ganlab.data import datasets

    folder, url = served
    staging = tmp_path / "facades"
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        (staging / split).mkdir(parents=True)
        for i in range(n):
            pair = _solid((0, 0, 0), (512, 256))
            pair.paste(_solid((40 * (i + 1), 0, 0), (256, 256)), (0, 0))  # A: photo
            pair.paste(_solid((0, 0, 40 * (i + 1)), (256, 256)), (256, 0))  # B: labels
            pair.save(staging / split / f"{i + 1}.jpg")
    with tarfile.open(folder / "facades.tar.gz", "w:gz") as archive:
        archive.add(staging, "facades")
    root = tmp_path / "data"
    datasets.download("pix2pix_facades", root, mirrors=[url])

    params = tiny_params(
        dataset="pix2pix_facades",
        model="pix2pix",
        image_size=32,
        batch_size=1,
        translation={"source_class": "labels", "target_class": "photo"},  # facades: B -> A
    )
    config = from_mapping(params)
    assert domains.task_of(config) == "classes"
    task = domains.load_domains(config, root, train=True)
    assert task.paired and len(task.source) == len(task.target) == 3
    # The i-th labels image and the i-th photo came from the same file.
    blue_labels = task.source[:, 2].float().mean(dim=(1, 2))
    red_photos = task.target[:, 0].float().mean(dim=(1, 2))
    assert blue_labels.tolist() == pytest.approx([40, 80, 120], abs=3)
    assert red_photos.tolist() == pytest.approx([40, 80, 120], abs=3)
    assert task.source[:, 0].float().mean() < 3  # the labels half, not the photo
    with pytest.raises(ConfigError, match=r"translation.source_class = 'Sneaker'.*'labels'"):
        from_mapping({**params, "translation": {}})
