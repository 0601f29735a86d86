"""Class-conditional GANs: projection D (cGAN-PD) and ACGAN, on any registered model."""

import dataclasses
from pathlib import Path

import mlflow
import pytest
import torch

from ganlab import tracking
from ganlab.cli import main
from ganlab.config import ConfigError
from ganlab.models import MODELS, ModelSpec, build_models
from ganlab.models.conditional import OneHotInput
from ganlab.sampling import build_generator, class_labels, generate, load_generator
from ganlab.training.params import from_mapping
from tests.conftest import FP32, tiny_params, tiny_spec, train_on_cpu, write_generator_file


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
@pytest.mark.parametrize("label_input", ["concat", "multiply"])
def test_conditional_models_take_labels(model, conditioning, label_input):
    spec = tiny_spec(
        8,
        (1, 28, 28),
        ngf=4,
        ndf=4,
        conditioning=conditioning,
        n_classes=10,
        label_input=label_input,
    )
    netG, netD = build_models(model, spec, "dcgan")
    labels = torch.tensor([0, 3, 9])
    images = netG(torch.randn(3, 8), labels)
    scores, class_logits = netD(images, labels)
    assert images.shape == (3, 1, 28, 28) and scores.shape == (3,)
    if conditioning == "acgan":
        assert class_logits.shape == (3, 10)
    else:
        assert class_logits is None
        # the projection term makes D's score depend on the label it is asked about
        assert not torch.allclose(scores, netD(images, torch.tensor([1, 1, 1]))[0])


@pytest.mark.parametrize("model", sorted(MODELS))
def test_multiplied_label_scales_each_noise_unit(model):
    """label_input: multiply feeds G's own network z * embed(y), an embedding as wide as z
    (the ACGAN code's G), so that no class can be drawn without the noise."""
    spec = tiny_spec(
        8, (1, 28, 28), ngf=4, ndf=4, conditioning="acgan", n_classes=10, label_input="multiply"
    )
    netG, _ = build_models(model, spec, "dcgan")
    netG.eval()
    z, labels = torch.randn(4, 8), torch.tensor([0, 3, 3, 9])
    with torch.no_grad():
        expected = netG.base(z * netG.embed(labels))
        assert torch.equal(netG(z, labels), expected)
        # the same class with other noise is another image
        assert not torch.allclose(netG(z, labels)[1], netG(z.flip(0), labels)[1])


def test_spectral_norm_bounds_the_projection_embedding_too():
    """Miyato & Koyama normalize the class embedding with D's layers; unbounded, it grew
    until the class term swamped the normalized rest of D."""
    spec = tiny_spec(
        8, (1, 28, 28), ngf=4, ndf=4, conditioning="projection", n_classes=10, spectral_norm=True
    )
    _, netD = build_models("dcgan", spec, "dcgan")
    with torch.no_grad():
        netD.embed.parametrizations.weight.original.mul_(50)
    netD.train()
    for _ in range(30):  # power iterations run on each training forward pass
        netD(torch.randn(4, 1, 28, 28), torch.arange(4))
    assert torch.linalg.matrix_norm(netD.embed.weight, ord=2).item() == pytest.approx(1, abs=0.02)


def two_class_data(n: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: a bar at the top; class 1: a bar at the bottom. Nothing else tells them apart."""
    labels = torch.arange(n) % 2
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    images[labels == 0, :, 2:10, 4:24] = 255
    images[labels == 1, :, 18:26, 4:24] = 255
    return images, labels


# projection with its paper's hinge loss: with bce, 240 steps land short of the bar on
# some seeds and CPUs (the bar moved by 0.17 on an AMD EPYC)
@pytest.mark.parametrize(
    ("conditioning", "loss", "label_input"),
    [("projection", "hinge", "concat"), ("acgan", "bce", "concat"), ("acgan", "bce", "multiply")],
)
def test_conditional_generator_draws_the_class_it_is_asked_for(
    conditioning, loss, label_input, tmp_path, cpu
):
    images, labels = two_class_data()
    params = tiny_params(
        model="mlp",
        classes={"conditional": conditioning, "label_input": label_input},
        loss=loss,
        epochs=60,
        batch_size=32,
        lr=2e-3,
        dropout=0.0,
    )
    result = train_on_cpu(from_mapping(params), images, tmp_path / "c.pt", labels)
    with torch.no_grad():
        z = torch.randn(64, 16)
        top = result.netG(z, torch.zeros(64, dtype=torch.long))
        bottom = result.netG(z, torch.ones(64, dtype=torch.long))

    def top_minus_bottom(x: torch.Tensor) -> float:
        return (x[:, :, 2:10].mean() - x[:, :, 18:26].mean()).item()

    # same noise, other label: the bar moves (pixels in [-1, 1]; a perfect G gives +-2)
    assert top_minus_bottom(top) > 0.5
    assert top_minus_bottom(bottom) < -0.5


def test_conditional_needs_labels_and_names_the_choices(cpu, tmp_path):
    with pytest.raises(ValueError, match="needs one label per image"):
        train_on_cpu(
            from_mapping(tiny_params(classes={"conditional": "acgan"})),
            torch.zeros(32, 1, 28, 28, dtype=torch.uint8),
            tmp_path / "c.pt",
        )
    choices = r"\['acgan', 'none', 'projection'\]"
    with pytest.raises(ConfigError, match=rf"conditional = 'cgan'.*{choices}"):
        from_mapping(tiny_params(classes={"conditional": "cgan"}))


def conditional_generator_file(tmp_path: Path) -> Path:
    spec = tiny_spec(8, (1, 28, 28), ngf=4, ndf=4, conditioning="projection", n_classes=10)
    return write_generator_file(tmp_path / "generator.pt", spec)


def test_saved_conditional_generator_samples_every_class_or_the_one_asked(tmp_path, cpu):
    netG, _ = load_generator(conditional_generator_file(tmp_path), cpu)
    assert class_labels(netG, 12, None).tolist() == [*range(10), 0, 1]  # balanced by default
    assert class_labels(netG, 3, torch.tensor(7)).tolist() == [7, 7, 7]
    with pytest.raises(ValueError, match=r"0\.\.9"):
        class_labels(netG, 3, torch.tensor(10))
    kwargs = dict(z_dim=8, latent="normal", seed=1, device=cpu, precision=FP32)
    sevens = generate(netG, 4, labels=torch.tensor(7), **kwargs)
    with torch.no_grad():
        z = torch.Generator().manual_seed(1)
        expected = netG(torch.randn(4, 8, generator=z), torch.full((4,), 7))
    assert sevens.dtype == torch.uint8
    assert (sevens.float() - ((expected + 1) * 127.5).clamp(0, 255)).abs().max() <= 1


def test_cli_class_selection(tmp_path):
    path = conditional_generator_file(tmp_path)
    source = ["--checkpoint", str(path)]
    assert main(["sample", *source, "--class", "3", "-n", "4", "--out", f"{tmp_path}/a.png"]) == 0
    assert (tmp_path / "a.png").is_file()
    assert main(["sample", *source, "--class", "12", "--out", str(tmp_path / "b.png")]) == 2
    assert not (tmp_path / "b.png").exists()
    out = tmp_path / "walk.png"
    assert main(["interpolate", *source, "--class", "5", "--steps", "3", "--out", str(out)]) == 0
    assert out.is_file()


def test_cli_class_on_an_unconditional_generator_is_an_error(tmp_path, capsys):
    path = write_generator_file(tmp_path / "g.pt", tiny_spec(8, (1, 28, 28), ngf=4, ndf=4))
    assert main(["sample", "--checkpoint", str(path), "--class", "1"]) == 2
    assert "not class-conditional" in capsys.readouterr().err


def test_conditional_generator_is_registered_with_a_one_hot_input(tmp_path, monkeypatch, cpu):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    netG, saved = load_generator(conditional_generator_file(tmp_path), cpu)
    run_id = tracking.new_run({}, "cond")
    with tracking.open_run(run_id):
        metadata = {k: v for k, v in saved.items() if k != "state_dict"}
        tracking.log_generator(netG, 8, "ganlab-test-cond", metadata)
    model = mlflow.pytorch.load_model("models:/ganlab-test-cond/1")
    # what serving it needs, at this run's versions: not what the logging process had imported
    requirements = (
        Path(
            mlflow.artifacts.download_artifacts(
                "models:/ganlab-test-cond/1", dst_path=str(tmp_path)
            )
        )
        .joinpath("requirements.txt")
        .read_text()
        .split()
    )
    assert {r.split("==")[0] for r in requirements} == {"mlflow", "torch", "numpy"}
    assert f"torch=={torch.__version__.split('+')[0]}" in requirements
    x = torch.cat([torch.randn(2, 8), torch.nn.functional.one_hot(torch.tensor([2, 5]), 10)], 1)
    with torch.no_grad():
        assert torch.allclose(model(x), OneHotInput(netG, 8)(x), atol=1e-5)
    # ganlab rebuilds the same generator from the registered model alone
    weights, metadata = tracking.load_generator_weights(run_id)
    rebuilt, _ = build_generator(metadata, weights, cpu, "registry")
    for name, value in netG.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value), name


def test_conditional_gs_take_z_times_the_label_code_unless_saved_before_the_choice():
    """params.yaml's default is multiply (the zoo's acgan and cgan_projection rows); a generator
    file written before label_input existed was concat and must load as one."""
    config = from_mapping(tiny_params(classes={"conditional": "projection"}))
    assert config.classes.label_input == "multiply"
    saved = dataclasses.asdict(tiny_spec(8, (1, 28, 28), conditioning="projection", n_classes=10))
    del saved["label_input"]
    assert ModelSpec.from_saved(saved).label_input == "concat"
