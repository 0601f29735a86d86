"""Stage `train`: one GAN training run, resumable, tracked in a new MLflow run.

The resume checkpoint lives outside the stage's outs (DVC deletes outs before it
reruns a stage): `dvc repro` after an interruption continues from it when params
are unchanged, and it is removed once training completes (ganlab.outputs).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ganlab import outputs, runs
from ganlab.config import ConfigError
from ganlab.device import pick_device
from ganlab.models import translates
from ganlab.stages import parser, run_stage
from ganlab.training import distributed, params


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--data", type=Path, required=True, help="data root from download")
    for file in dataclasses.fields(outputs.TrainOutputs):  # not --run: torchrun's --run-path
        option = f"--{file.name.replace('_', '-')}"
        arguments.add_argument(option, type=Path, required=True, help=file.metadata["help"])
    arguments.add_argument("--classifier", type=Path, help="domain classifier (train.eval_every)")
    arguments.add_argument("--stats", type=Path, help="FID reference .npz (train.eval_every)")
    args = arguments.parse_args()
    config = params.load(args.params)
    files = {f.name for f in dataclasses.fields(outputs.TrainOutputs)}
    paths = outputs.TrainOutputs(**{k: v for k, v in vars(args).items() if k in files})
    if translates(config.model):
        runs.train_translator(args.data, paths, config, pick_device())
        return
    if config.train.nproc > 1 and not distributed.under_torchrun():
        distributed.relaunch(config.train.nproc, "ganlab.stages.train")  # does not return
    if distributed.under_torchrun():
        world, device = distributed.init_from_env()
    else:
        world, device = distributed.World(), pick_device()
    if config.train.sync_batchnorm and world.size > 1 and device.type != "cuda":
        raise ConfigError(
            "params.yaml: train.sync_batchnorm = true needs CUDA devices (PyTorch's SyncBatchNorm "
            "runs on GPUs only): expected false on the CPU"
        )
    try:
        scoring = (args.classifier, args.stats)
        runs.train_noise_to_image(args.data, paths, config, world, device, scoring)
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    run_stage(main)
