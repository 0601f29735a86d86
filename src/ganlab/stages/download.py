"""Stage `download`: the dataset's original files, verified, in torchvision's layout."""

from __future__ import annotations

from pathlib import Path

from ganlab.config import load_config
from ganlab.data import datasets
from ganlab.stages import parser, run_stage


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--out", type=Path, required=True, help="data root to fill")
    args = arguments.parse_args()
    config = load_config(args.params, datasets.check_params)
    sources = datasets.download(
        config.dataset,
        args.out,
        config.download.mirrors,
        config.download.local_dirs,
        config.download.image_folder,
        config.download.trusted_md5,
    )
    for filename, source in sources.items():
        print(f"{filename}: verified, from {source}")


if __name__ == "__main__":
    run_stage(main)
