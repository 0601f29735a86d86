"""Training speed: ganlab's loop against the classic loops people copy, on the same data.

Prints, from one run on this machine:
  1. the classic Fashion-MNIST lab loop (MLP GAN, batch 64, DataLoader + ToTensor, SGD for D,
     Adam for G, fixed-noise samples drawn after every batch) vs ganlab's `mlp`;
  2. a pytorch/examples-style DCGAN loop (DataLoader, fp32, `.item()` every step) vs ganlab's
     `dcgan` (uint8 tensors on the device, bf16 autocast, channels_last, no per-step sync);
  3. achieved FLOP/s of ganlab's DCGAN step against this machine's measured matmul peaks;
  4. the wall time of a no-op `dvc repro`;
  5. bf16 vs fp32 training quality: domain-classifier FID after the same number of steps.

    python benchmarks/train_speed.py            # about 5 minutes on a 2-core CPU
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode
from torchvision import datasets as torchvision_datasets
from torchvision import transforms

from ganlab.data import datasets
from ganlab.device import Precision, cpu_model, resolve_precision
from ganlab.metrics import classifier, fid
from ganlab.models import ModelSpec, build_models
from ganlab.sampling import generate
from ganlab.training.gan import model_spec, train
from ganlab.training.params import from_mapping

FP32 = Precision("fp32", None)
CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


def spec_of(**params: object) -> ModelSpec:
    """The models' shape for 28x28 images under these params (the rest at their defaults)."""
    return model_spec(from_mapping(params), (1, 28, 28), n_classes=10)


def classic_lab_loop(root: Path, n_images: int) -> float:
    """The Udacity-style Fashion-MNIST GAN loop, faithfully: returns images/s."""
    dataset = torchvision_datasets.FashionMNIST(
        str(root), train=True, transform=transforms.ToTensor()
    )
    dataset = torch.utils.data.Subset(dataset, range(n_images))
    loader = DataLoader(dataset, batch_size=64, shuffle=True, drop_last=True)
    netG, netD = build_models("mlp", spec_of(model="mlp", dropout=0.3), "default")
    d_optimizer = torch.optim.SGD(netD.parameters(), lr=0.02)
    g_optimizer = torch.optim.Adam(netG.parameters(), lr=0.002)
    criterion = nn.BCEWithLogitsLoss()
    fixed_z = torch.empty(16, 100).uniform_(-1, 1)
    samples, losses = [], []
    started = time.perf_counter()
    seen = 0
    for real_images, _ in loader:
        batch_size = real_images.size(0)
        real_images = real_images * 2 - 1
        d_optimizer.zero_grad()
        d_real = criterion(netD(real_images).squeeze(), torch.ones(batch_size) * 0.9)
        z = torch.empty(batch_size, 100).uniform_(-1, 1)
        d_fake = criterion(netD(netG(z)).squeeze(), torch.zeros(batch_size))
        d_loss = d_real + d_fake
        d_loss.backward()
        d_optimizer.step()
        g_optimizer.zero_grad()
        z = torch.empty(batch_size, 100).uniform_(-1, 1)
        g_loss = criterion(netD(netG(z)).squeeze(), torch.ones(batch_size))
        g_loss.backward()
        g_optimizer.step()
        losses.append((d_loss.item(), g_loss.item()))
        netG.eval()
        samples.append(netG(fixed_z).detach())  # sampled after every batch, as in the lab
        netG.train()
        seen += batch_size
    return seen / (time.perf_counter() - started)


def examples_dcgan_loop(root: Path, n_images: int) -> float:
    """pytorch/examples' DCGAN loop on ganlab's 28x28 DCGAN: DataLoader, fp32, .item() per step."""
    dataset = torchvision_datasets.FashionMNIST(
        str(root),
        train=True,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]),
    )
    dataset = torch.utils.data.Subset(dataset, range(n_images))
    loader = DataLoader(dataset, batch_size=128, shuffle=True, drop_last=True)
    netG, netD = build_models("dcgan", spec_of(ngf=64, ndf=64), "dcgan")
    criterion = nn.BCEWithLogitsLoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    started = time.perf_counter()
    seen = 0
    for real, _ in loader:
        b_size = real.size(0)
        netD.zero_grad()
        errD_real = criterion(netD(real), torch.full((b_size,), 1.0))
        errD_real.backward()
        D_x = torch.sigmoid(netD(real)).mean().item()
        noise = torch.randn(b_size, 100, 1, 1)
        fake = netG(noise)
        output = netD(fake.detach())
        errD_fake = criterion(output, torch.full((b_size,), 0.0))
        errD_fake.backward()
        D_G_z1 = torch.sigmoid(output).mean().item()
        optimizerD.step()
        netG.zero_grad()
        output = netD(fake)
        errG = criterion(output, torch.full((b_size,), 1.0))
        errG.backward()
        D_G_z2 = torch.sigmoid(output).mean().item()
        optimizerG.step()
        _ = (errD_real.item() + errD_fake.item(), errG.item(), D_x, D_G_z1, D_G_z2)
        seen += b_size
    return seen / (time.perf_counter() - started)


def ganlab_loop(images: torch.Tensor, params: dict, precision: Precision, tmp: Path):
    config = from_mapping({**params, "epochs": 1, "train": {"checkpoint_every": 10**9}})
    result = train(
        config,
        images,
        device=CPU,
        precision=precision,
        checkpoint_path=tmp / f"{time.monotonic_ns()}.pt",
        run_id="benchmark",
    )
    return result.images_seen / result.train_seconds, result


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - started)


def dcgan_step_flops(batch_size: int = 128) -> int:
    """FLOPs of one ganlab DCGAN training step (D and G forward + backward), counted by PyTorch."""
    netG, netD = build_models("dcgan", spec_of(ngf=64, ndf=64), "dcgan")
    real = torch.rand(batch_size, 1, 28, 28) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        fake = netG(torch.randn(batch_size, 100))
        d_loss = netD(real).mean() - netD(fake.detach()).mean()
        d_loss.backward()
        netD(fake).mean().backward()
    return counter.get_total_flops()


def noop_repro_seconds(repo: Path) -> float | None:
    """Wall time of `dvc repro` when nothing changed; None if the pipeline isn't up to date."""
    if subprocess.run(["dvc", "status", "--quiet"], cwd=repo, capture_output=True).returncode != 0:
        return None
    started = time.perf_counter()
    subprocess.run(["dvc", "repro"], cwd=repo, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--n", type=int, default=12800, help="training images per loop")
    arguments.add_argument("--quality-steps", type=int, default=60000 // 128)
    arguments.add_argument("--repo", type=Path, default=REPO, help="an up-to-date pipeline to time")
    args = arguments.parse_args()
    bf16 = resolve_precision("bf16", CPU)
    threads = torch.get_num_threads()
    print(f"{cpu_model()}, {threads} threads, {args.n} Fashion-MNIST images per loop\n")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        datasets.download("fashion_mnist", tmp, local_dirs=["/usr/share/datasets/fashion-mnist"])
        images, labels = datasets.load_images("fashion_mnist", tmp, train=True)
        subset = images[: args.n]

        lab = classic_lab_loop(tmp, args.n)
        mlp_params = {
            "model": "mlp",
            "batch_size": 64,
            "latent": "uniform",
            "dropout": 0.3,
            "optim.d_optimizer": "sgd",
            "optim.d_lr": 0.02,
            "lr": 0.002,
            "init": "default",
            "regularize.real_label": 0.9,
        }
        ours_mlp, _ = ganlab_loop(subset, mlp_params, bf16, tmp)
        ours_mlp_fp32, _ = ganlab_loop(subset, mlp_params, FP32, tmp)
        examples = examples_dcgan_loop(tmp, args.n)
        ours_dcgan, _ = ganlab_loop(subset, {"model": "dcgan"}, bf16, tmp)
        ours_dcgan_fp32, _ = ganlab_loop(subset, {"model": "dcgan"}, FP32, tmp)

        rows = [
            ("1. classic lab loop (MLP, batch 64)", lab, None),
            ("   ganlab mlp, same settings, bf16", ours_mlp, lab),
            ("   ganlab mlp, same settings, fp32", ours_mlp_fp32, lab),
            ("2. pytorch/examples DCGAN loop (batch 128, fp32)", examples, None),
            ("   ganlab dcgan, bf16 + channels_last", ours_dcgan, examples),
            ("   ganlab dcgan, fp32 + channels_last", ours_dcgan_fp32, examples),
        ]
        print(f"{'loop':52} {'images/s':>9} {'ratio':>7}")
        for name, rate, baseline in rows:
            ratio = f"{rate / baseline:6.1f}x" if baseline else ""
            print(f"{name:52} {rate:9.0f} {ratio:>7}")

        peak_bf16, peak_fp32 = matmul_peak(torch.bfloat16), matmul_peak(torch.float32)
        flops_per_image = dcgan_step_flops() / 128
        achieved = ours_dcgan * flops_per_image
        print(
            f"\n3. matmul peaks: bf16 {peak_bf16 / 1e12:.2f}, fp32 {peak_fp32 / 1e12:.2f} TFLOP/s"
        )
        print(
            f"   ganlab DCGAN step: {flops_per_image / 1e6:.0f} MFLOP per image, "
            f"{achieved / 1e9:.0f} GFLOP/s = {achieved / peak_bf16:.1%} of the bf16 peak, "
            f"{achieved / peak_fp32:.1%} of the fp32 peak"
        )

        noop = noop_repro_seconds(args.repo)
        shown = f"{noop:.2f} s" if noop else "skipped: the pipeline there is not up to date"
        print(f"\n4. no-op `dvc repro` in {args.repo}: {shown}")

        steps = args.quality_steps
        print(f"\n5. bf16 vs fp32 training quality: DCGAN, {steps} steps of batch 128")
        model = classifier.fit(
            images,
            labels,
            10,
            epochs=1,
            batch_size=128,
            lr=1e-3,
            seed=0,
            device=CPU,
            precision=classifier.FP32,
        )
        test_images, _ = datasets.load_images("fashion_mnist", tmp, train=False)
        real_features, _ = classifier.outputs(
            model, test_images, device=CPU, precision=classifier.FP32
        )
        real_stats = fid.statistics(real_features)
        steps_images = images[: steps * 128]
        for name, precision in (("bf16", bf16), ("fp32", FP32)):
            rate, result = ganlab_loop(steps_images, {"model": "dcgan"}, precision, tmp)
            fake = generate(
                result.netG,
                5000,
                z_dim=100,
                latent="normal",
                seed=1,
                device=CPU,
                precision=precision,
            )
            features, _ = classifier.outputs(model, fake, device=CPU, precision=classifier.FP32)
            distance = fid.frechet_distance(*fid.statistics(features), *real_stats)
            print(
                f"   {name}: classifier FID {distance:.2f} (5000 fake vs 10000 test), "
                f"{rate:.0f} img/s"
            )


if __name__ == "__main__":
    main()
