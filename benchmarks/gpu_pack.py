"""What a GPU machine without a package registry needs for the pipeline, packed to travel.

The device machine's image has torch, pandas, scipy and onnxruntime but not DVC, MLflow or
pytorch-fid, and reaches no registry; at most 64 MiB of working tree travels with each call.
So, here:

    python benchmarks/gpu_pack.py pack          # .gpu/: cp312 wheels + the Inception weights

fetches scripts/gpu_wheels.txt as Python 3.12 wheels and packs the FID Inception weights
(95.7 MB, over one call's limit) byte-shuffled and zlib-compressed in two parts, and prints
what each of the two calls carries. There, scripts/gpu_run.sh runs

    python benchmarks/gpu_pack.py unpack        # the weights into torch's hub cache, verified

which rebuilds the file bit for bit (its SHA-256 is checked) with its provenance record.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PACK = REPO / ".gpu"
WHEEL_LIST = REPO / "scripts" / "gpu_wheels.txt"
FIRST_PART_BYTES = 56 * 2**20  # the first call carries this much; the second, the rest + wheels
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (17, 24, 26, 27, 28, 31, 34, 35)]
PLATFORMS += ["manylinux2014_x86_64", "manylinux1_x86_64"]


def shuffle(data: bytes, width: int = 4) -> bytes:
    """Byte planes of float32 values (all first bytes, then all second bytes, ...): exponents
    and high mantissa bytes sit together, which zlib compresses to ~85% instead of ~93%."""
    whole = len(data) // width * width
    planes = np.frombuffer(data[:whole], dtype=np.uint8).reshape(-1, width).T.tobytes()
    return planes + data[whole:]


def unshuffle(data: bytes, width: int = 4) -> bytes:
    whole = len(data) // width * width
    values = np.frombuffer(data[:whole], dtype=np.uint8).reshape(width, -1).T.tobytes()
    return values + data[whole:]


def pack_weights(weights: Path, record: dict, folder: Path) -> list[Path]:
    """The weights file as two compressed parts and a manifest (size, SHA-256, provenance)."""
    data = weights.read_bytes()
    packed = zlib.compress(shuffle(data), 9)
    parts = [folder / "weights.1", folder / "weights.2"]
    parts[0].write_bytes(packed[:FIRST_PART_BYTES])
    parts[1].write_bytes(packed[FIRST_PART_BYTES:])
    manifest = {
        "file": weights.name,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "provenance": record,
    }
    (folder / "weights.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return parts


def unpack_weights(parts: list[Path], manifest_path: Path, hub: Path) -> Path:
    """The weights file rebuilt from its parts into `hub`, its SHA-256 checked, and its
    provenance record written beside it."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    data = unshuffle(zlib.decompress(b"".join(part.read_bytes() for part in parts)))
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise SystemExit(f"{parts}: the rebuilt weights do not match {manifest_path}'s SHA-256")
    hub.mkdir(parents=True, exist_ok=True)
    target = hub / manifest["file"]
    tmp = target.with_suffix(".partial")
    tmp.write_bytes(data)
    tmp.replace(target)
    record = target.with_name(target.name + ".provenance.json")
    record.write_text(json.dumps(manifest["provenance"], indent=2) + "\n", encoding="utf-8")
    return target


def download_wheels(folder: Path) -> None:
    """scripts/gpu_wheels.txt as cp312 manylinux wheels, each without its needs (the list
    names every one the machine lacks)."""
    platforms = [arg for name in PLATFORMS for arg in ("--platform", name)]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
    command += ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    subprocess.run([*command, *platforms, "-d", str(folder), "-r", str(WHEEL_LIST)], check=True)


def megabytes(paths: list[Path]) -> float:
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


def pack() -> None:
    from ganlab.metrics.inception import ensure_weights, weights_path

    shutil.rmtree(PACK, ignore_errors=True)
    (PACK / "wheels").mkdir(parents=True)
    download_wheels(PACK / "wheels")
    parts = pack_weights(weights_path(), ensure_weights(), PACK)
    first, second = [parts[0]], [parts[1], PACK / "weights.json", PACK / "wheels"]
    print(f"call 1 carries .gpu/weights.1: {megabytes(first):.1f} MiB")
    size = megabytes(second)
    print(f"call 2 carries .gpu/weights.2, .gpu/weights.json, .gpu/wheels: {size:.1f} MiB")
    print("(plus the working tree; 64 MiB a call in all)")


def unpack() -> None:
    import torch

    hub = Path(torch.hub.get_dir()) / "checkpoints"
    kept = Path("/tmp/ganlab-gpu")  # where call 1's part waits for call 2
    first = PACK / "weights.1" if (PACK / "weights.1").is_file() else kept / "weights.1"
    if not (PACK / "weights.2").is_file():
        kept.mkdir(exist_ok=True)
        shutil.copy(first, kept / "weights.1")
        print(f"kept {first} for the next call")
        return
    print(f"weights -> {unpack_weights([first, PACK / 'weights.2'], PACK / 'weights.json', hub)}")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("action", choices=["pack", "unpack"])
    {"pack": pack, "unpack": unpack}[arguments.parse_args().action]()


if __name__ == "__main__":
    main()
