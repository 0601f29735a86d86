"""What a GPU machine without a package registry or the internet needs for the pipeline,
packed in parcels that fit the device calls.

The device machine's image has torch, pandas, scipy and onnxruntime but not DVC, MLflow or
pytorch-fid, reaches no registry and no dataset mirror, and at most 64 MiB of working tree
travels with each call. So, here:

    python benchmarks/gpu_pack.py pack       # .gpu/1, .gpu/2, ...: one parcel per device call

packs scripts/gpu_wheels.txt as Python 3.12 wheels, the FID Inception weights (95.7 MB,
byte-shuffled and zlib-compressed, in chunks) and the Fashion-MNIST files of
download.local_dirs into parcels of at most PARCEL_MIB, each with the manifest (every file's
SHA-256, the weights' provenance record). There, each call carries one parcel and runs
scripts/gpu_run.sh, which calls

    python benchmarks/gpu_pack.py receive    # this call's parcel kept in /tmp/ganlab-gpu
    python benchmarks/gpu_pack.py install    # once all arrived: weights, data, wheels checked

install rebuilds the weights bit for bit in torch's hub cache (with their provenance record)
and puts the data files where download.local_dirs looks; the wheels are pip's to install.
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
STORE = Path("/tmp/ganlab-gpu")  # where parcels gather on the device machine between calls
WHEEL_LIST = REPO / "scripts" / "gpu_wheels.txt"
SDIST_MARK = "# sdist only"  # a pin whose registry has no wheel: `pip wheel` builds one here
PARCEL_MIB = 56  # a call's 64 MiB, less the working tree
CHUNK_MIB = 36  # the compressed weights, in pieces that share a parcel with smaller files
DATA_DIR = "/usr/share/datasets/fashion-mnist"  # params.yaml's download.local_dirs
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


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compress_weights(weights: Path, folder: Path, chunk_bytes: int) -> list[Path]:
    """The weights file byte-shuffled, compressed and cut into chunks in `folder`."""
    packed = zlib.compress(shuffle(weights.read_bytes()), 9)
    chunks = []
    for index, start in enumerate(range(0, len(packed), chunk_bytes)):
        chunks.append(folder / f"weights.z{index}")
        chunks[-1].write_bytes(packed[start : start + chunk_bytes])
    return chunks


def rebuild_weights(chunks: list[Path], expected_sha256: str, target: Path) -> Path:
    """The weights file from its chunks, checked against its SHA-256, written atomically."""
    data = unshuffle(zlib.decompress(b"".join(chunk.read_bytes() for chunk in chunks)))
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise SystemExit(f"the weights rebuilt from {chunks} do not match their SHA-256")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def parcels_of(files: list[Path], limit: int) -> list[list[Path]]:
    """Files into as few parcels of at most `limit` bytes as first-fit by size gives."""
    parcels: list[list[Path]] = []
    room: list[int] = []
    for path in sorted(files, key=lambda p: -p.stat().st_size):
        size = path.stat().st_size
        if size > limit:
            raise SystemExit(f"{path} ({size / 2**20:.1f} MiB) is larger than a parcel")
        fit = next((i for i, free in enumerate(room) if free >= size), None)
        if fit is None:
            parcels.append([])
            room.append(limit)
            fit = len(parcels) - 1
        parcels[fit].append(path)
        room[fit] -= size
    return parcels


def wheel_pins(path: Path = WHEEL_LIST) -> tuple[list[str], list[str]]:
    """(the list's pins that the registry has as wheels, those it has as source only: marked
    SDIST_MARK, built into pure-Python wheels here)."""
    binary, sdist = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        pin = line.split("#", 1)[0].strip()
        if pin:
            (sdist if SDIST_MARK in line else binary).append(pin)
    return binary, sdist


def download_wheels(folder: Path) -> None:
    """scripts/gpu_wheels.txt as cp312 manylinux wheels, each without its needs (the list
    names every one the machine lacks)."""
    binary, sdist = wheel_pins()
    platforms = [arg for name in PLATFORMS for arg in ("--platform", name)]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
    command += ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    subprocess.run([*command, *platforms, "-d", str(folder), *binary], check=True)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder)]
    subprocess.run([*build, *sdist], check=True)


def make_parcels(
    weights: Path, provenance: dict, data: list[Path], wheels: list[Path], folder: Path
) -> list[Path]:
    """The parcels folder/1, folder/2, ...: the compressed weights' chunks, the data files and
    the wheels, first-fit, each parcel with the manifest of them all."""
    staging = folder / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    chunks = compress_weights(weights, staging, int(CHUNK_MIB * 2**20))
    manifest = {
        "weights": {
            "file": weights.name,
            "sha256": sha256(weights),
            "chunks": [chunk.name for chunk in chunks],
            "provenance": provenance,
        },
        "data": {"dir": DATA_DIR, "files": {path.name: sha256(path) for path in data}},
        "wheels": {path.name: sha256(path) for path in wheels},
    }
    parcels = parcels_of([*chunks, *data, *wheels], int(PARCEL_MIB * 2**20))
    manifest["parcels"] = len(parcels)
    folders = []
    for number, files in enumerate(parcels, start=1):
        folders.append(folder / str(number))
        folders[-1].mkdir()
        for path in files:
            shutil.copy(path, folders[-1] / path.name)
        (folders[-1] / "manifest.json").write_text(json.dumps(manifest, indent=2), "utf-8")
    shutil.rmtree(staging)
    return folders


def pack() -> None:
    from ganlab.metrics.inception import ensure_weights, weights_path

    shutil.rmtree(PACK, ignore_errors=True)
    wheels = PACK / "wheels"
    wheels.mkdir(parents=True)
    download_wheels(wheels)
    data = sorted(Path(DATA_DIR).glob("*.gz"))
    parcels = make_parcels(
        weights_path(), ensure_weights(), data, sorted(wheels.glob("*.whl")), PACK
    )
    shutil.rmtree(wheels)
    for parcel in parcels:
        size = sum(path.stat().st_size for path in parcel.iterdir()) / 2**20
        print(f"call {parcel.name} of {len(parcels)}: carry .gpu/{parcel.name} ({size:.1f} MiB)")


def receive(parcel: Path, store: Path = STORE) -> None:
    """This call's parcel into the store, where the next calls find it."""
    store.mkdir(parents=True, exist_ok=True)
    for path in parcel.iterdir():
        shutil.copy(path, store / path.name)
    print(f"received {parcel}: {len(list(store.iterdir()))} files in {store}")


def missing(store: Path = STORE) -> list[str]:
    """The files of the manifest that have not arrived (everything, without a manifest)."""
    if not (store / "manifest.json").is_file():
        return ["manifest.json"]
    manifest = json.loads((store / "manifest.json").read_text(encoding="utf-8"))
    wanted = [*manifest["weights"]["chunks"], *manifest["data"]["files"], *manifest["wheels"]]
    return [name for name in wanted if not (store / name).is_file()]


def install(store: Path = STORE, hub: Path | None = None, data_dir: Path | None = None) -> None:
    """Every file checked; the weights rebuilt into the hub cache with their provenance record;
    the data files where download.local_dirs looks (the wheels stay in the store for pip)."""
    absent = missing(store)
    if absent:
        raise SystemExit(f"{len(absent)} files have not arrived yet: {absent[:5]}")
    manifest = json.loads((store / "manifest.json").read_text(encoding="utf-8"))
    for name, digest in {**manifest["data"]["files"], **manifest["wheels"]}.items():
        if sha256(store / name) != digest:
            raise SystemExit(f"{store / name} changed in transit: its SHA-256 differs")
    if hub is None:
        import torch

        hub = Path(torch.hub.get_dir()) / "checkpoints"
    weights = manifest["weights"]
    target = rebuild_weights(
        [store / chunk for chunk in weights["chunks"]], weights["sha256"], hub / weights["file"]
    )
    record = target.with_name(target.name + ".provenance.json")
    record.write_text(json.dumps(weights["provenance"], indent=2) + "\n", encoding="utf-8")
    data_dir = data_dir or Path(manifest["data"]["dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in manifest["data"]["files"]:
        shutil.copy(store / name, data_dir / name)
    print(f"installed: {target}, {len(manifest['data']['files'])} data files in {data_dir}")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("action", choices=["pack", "receive", "install"])
    arguments.add_argument("parcel", nargs="?", type=Path, help="receive: the parcel's folder")
    args = arguments.parse_args()
    if args.action == "pack":
        pack()
    elif args.action == "receive":
        receive(args.parcel)
    else:
        install()


if __name__ == "__main__":
    main()
