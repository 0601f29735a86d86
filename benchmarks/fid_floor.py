"""FID's own floor and bias (issue 41, item 4): what FID reads for real images, and how much of a
generator's FID is the finite number of fakes.

The floor: held-out training images (disjoint from the reference) scored against reference
statistics of the fid_stats stage's draw, its first 5,000 images (the default `fid.n_real`) and
10,000. The bias: a generator (default: the default run's best, models/generator_best.pt) at
5k, 10k and 20k fakes, and Chong & Forsyth's FID-infinity (FID against 1/N over nested subsets,
extrapolated to 1/N = 0). KID (unbiased) beside each. The fakes are the evaluate stage's own
draw (seed + 1), so the generator's FID at 5k against the 5,000-image reference is
metrics/eval.json's `fid`: the script prints both. Inception features are cached per 1,000
images under --cache, so an interrupted run picks up where it stopped.

    python benchmarks/fid_floor.py --record   # 2-core AVX2 CPU: ~60 min (25,000 Inception passes)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganlab import evaluation, results
from ganlab.config import Config, FidSection, load_config
from ganlab.data import datasets
from ganlab.device import cpu_model, pick_device
from ganlab.io import atomic_path
from ganlab.metrics import fid, scores
from ganlab.metrics.features import inception_features, inception_network
from ganlab.metrics.inception import ensure_weights

TABLE = "fid_floor"
CHUNK = 1000  # images per cached features file
COLUMNS = {
    "scored": "scored images",
    "reference": "reference images",
    "fid_5000": "FID at 5k",
    "fid_10000": "FID at 10k",
    "fid_20000": "FID at 20k",
    "fid_infinity": "FID-∞ (Chong & Forsyth)",
    "kid": "KID (all scored)",
}
KNOWN_TOLERANCE = 1e-4  # relative: another batch split moves features by ~1e-6


class Extractor:
    """Inception pool3 features of uint8 images, cached per CHUNK images by their pixels."""

    def __init__(self, settings: FidSection, cache: Path) -> None:
        self.settings, self.device = settings, pick_device()
        self.network = inception_network(settings, self.device)
        self.cache = cache / ensure_weights()["sha256"][:16]  # other weights: other features
        self.cache.mkdir(parents=True, exist_ok=True)

    def path(self, chunk: torch.Tensor) -> Path:
        return self.cache / f"{datasets.digest(chunk)}.npy"

    def __call__(self, images: torch.Tensor, label: str) -> np.ndarray:
        parts = []
        for start in range(0, len(images), CHUNK):
            chunk = images[start : start + CHUNK]
            path = self.path(chunk)
            if not path.is_file():
                desc = f"{label} {start + len(chunk):,}/{len(images):,}"
                features, _ = inception_features(
                    chunk, self.network, self.settings, self.device, desc
                )
                fid.save_features(path, features)
            parts.append(fid.load_features(path))
        return np.concatenate(parts)

    def adopt(self, images: torch.Tensor, known: np.ndarray, source: Path) -> int:
        """Cache `known` as the features of `images`' first rows (the fid_stats stage's, which
        cost 10 minutes on a 2-core CPU), after checking its first 10 rows against the network."""
        fresh, _ = inception_features(images[:10], self.network, self.settings, self.device)
        error = np.abs(fresh - known[:10]).max() / np.abs(fresh).max()
        if error > KNOWN_TOLERANCE:
            raise SystemExit(f"{source}: not the features of these images ({error:.1e} apart)")
        whole = min(len(known), len(images)) // CHUNK * CHUNK
        for start in range(0, whole, CHUNK):
            fid.save_features(
                self.path(images[start : start + CHUNK]), known[start : start + CHUNK]
            )
        return whole


def fakes_of(generator: Path, config: Config, n: int) -> torch.Tensor:
    """The evaluate stage's fakes of `generator`, n of them (its first fid.n_fake are its own)."""
    config = dataclasses.replace(config, fid=dataclasses.replace(config.fid, n_fake=n))
    return evaluation.generated_images(generator, config, pick_device())


def row(name: str, scored: np.ndarray, real: np.ndarray, sizes: list[int], min_n: int) -> dict:
    """FID of the first N scored images at each size, FID-infinity and KID, against `real`."""
    mu, sigma = fid.statistics(real)
    values: dict[str, Any] = {"scored": name, "reference": len(real)}
    for n in sizes:
        values[f"fid_{n}"] = fid.frechet_distance(*fid.statistics(scored[:n]), mu, sigma)
    values["fid_infinity"], curve = fid.fid_infinity(scored, mu, sigma, min_n)
    values["kid"] = scores.kernel_inception_distance(real, scored)[0]
    values["curve"] = [[n, round(v, 4)] for n, v in curve]  # kept for plots, not in the table
    print(", ".join(f"{k} {v:.4g}" for k, v in values.items() if k.startswith(("fid", "kid"))))
    return values


def draw(rows: list[dict[str, Any]], path: Path) -> None:
    """FID against 1/N with each row's fitted line down to 1/N = 0 (FID-infinity): the real
    images' floor on the left, the generators on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, 2, figsize=(11, 5.5), dpi=100)
    titles = ("held-out training images", "generated images")
    for axes, real, title in zip(panels, (True, False), titles, strict=True):
        for values in (r for r in rows if r["scored"].startswith("held-out") == real):
            n, fids = np.array(values["curve"], dtype=float).T
            line = axes.plot(1 / n, fids, marker=".", linestyle="none")[0]
            slope, intercept = np.polyfit(1 / n, fids, 1)
            ends = np.array([0, 1 / n.min()])
            who = "" if real else values["scored"].removesuffix(" (fakes)") + ", "
            label = f"{who}against {values['reference']:,} real: FID-∞ {values['fid_infinity']:.2f}"
            axes.plot(ends, intercept + slope * ends, color=line.get_color(), label=label)
        ticks = [n for n in (20000, 10000, 5000, 2500) if 1 / n <= axes.get_xlim()[1]]
        axes.set_xticks([0] + [1 / n for n in ticks], ["∞"] + [f"{n / 1000:g}k" for n in ticks])
        axes.set_xlabel("N, the images scored (the axis is linear in 1 / N)")
        axes.set_xlim(left=0)
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16))
    panels[0].set_ylabel("FID")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/raw"))
    parser.add_argument("--generator", type=Path, default=Path("models/generator_best.pt"))
    parser.add_argument("--eval-json", type=Path, default=Path("metrics/eval.json"))
    parser.add_argument("--known-features", type=Path, default=Path("data/fid_features.npy"))
    parser.add_argument("--references", type=int, nargs="+", default=[5000, 10000])
    parser.add_argument("--held-out", type=int, default=10000, help="real images scored")
    parser.add_argument("--fakes", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument("--min-n", type=int, default=2500, help="FID-infinity's smallest N")
    parser.add_argument("--cache", type=Path, default=Path(".cache/inception"))
    parser.add_argument("--label", help="the generator's name in the table (default: its path)")
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="score the held-out real images too (--no-floor: the generator only)",
    )
    parser.add_argument("--record", action="store_true", help="append to reports/results")
    parser.add_argument("--draw", type=Path, help="plot the recorded rows here, and stop")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.draw:
        return draw(results.load_table(TABLE)["rows"], args.draw)
    config = load_config(args.params, datasets.check_params)
    datasets.verify(config.dataset, args.data)
    if config.fid.precision != "fp32":
        raise SystemExit(f"{args.params}: fid.precision is {config.fid.precision}; use fp32")
    images, _ = datasets.load_images(config.dataset, args.data, train=True, size=config.image_size)
    n_reference = max(args.references)
    drawn, _ = datasets.reference_rows(len(images), n_reference + args.held_out)
    reference, held_out = images[drawn[:n_reference]], images[drawn[n_reference:]]
    fakes = fakes_of(args.generator, config, max(args.fakes))  # before the hour of Inception
    print(f"{cpu_model()}, torch {torch.__version__}; {args.generator}", flush=True)

    extract = Extractor(config.fid, args.cache)
    if args.known_features.is_file():
        known = fid.load_features(args.known_features)
        print(f"{extract.adopt(reference, known, args.known_features):,} features adopted")
    real = extract(reference, "reference")
    scored = {"held-out training images": extract(held_out, "held-out")} if args.floor else {}
    fakes_name = f"{args.label or args.generator} (fakes)"
    scored[fakes_name] = extract(fakes, "fakes")

    table = []
    for size in args.references:
        for name, features in scored.items():
            sizes = [n for n in args.fakes if n <= len(features)]
            table.append(row(name, features, real[:size], sizes, args.min_n))
    if args.eval_json.is_file() and config.fid.n_fake <= len(fakes):
        stage = json.loads(args.eval_json.read_text(encoding="utf-8"))["fid"]
        mu, sigma = fid.statistics(real[: config.fid.n_real])
        ours = fid.frechet_distance(
            *fid.statistics(scored[fakes_name][: config.fid.n_fake]), mu, sigma
        )
        print(
            f"the evaluate stage's FID ({args.eval_json}): {stage:.6f}; "
            f"the same fakes here: {ours:.6f}"
        )
    if args.record:
        command = "python benchmarks/fid_floor.py " + " ".join(sys.argv[1:])
        results.record_rows(TABLE, COLUMNS, table, command)


if __name__ == "__main__":
    main()
