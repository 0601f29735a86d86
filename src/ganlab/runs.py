"""A training run end to end, for each family: the data, the training with its MLflow run
and hooks, the generator files, and everything ganlab.outputs leaves after the last step.
The train stage parses its paths and calls one of these."""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import torch

from ganlab import checkpoint, outputs, snapshots, tracking
from ganlab.config import Config
from ganlab.data import datasets, domains
from ganlab.device import Precision, resolve_precision
from ganlab.training import distributed, semi_supervised, translation
from ganlab.training.gan import TrainResult, history_columns_of, model_spec, train
from ganlab.training.monitor import load_reference
from ganlab.training.precision_probe import probe_summary, training_precision
from ganlab.training.runner import Hooks, history_columns, run_fingerprint


def train_noise_to_image(
    data: Path,
    paths: outputs.TrainOutputs,
    config: Config,
    world: distributed.World,
    device: torch.device,
    scoring: tuple[Path | None, Path | None] = (None, None),
) -> None:
    """Train a noise-to-image GAN on `data` and leave every output. Under torchrun every rank
    calls it; rank 0 alone scores (`scoring`: classifier and FID stats files), tracks, writes."""
    images, labels, n_classes = datasets.load_training_set(config, data)
    spec = model_spec(config, tuple(images.shape[1:]), n_classes)
    precision, probe = training_precision(config, spec, device, world.size)
    if probe is not None:
        print(f"precision: auto -> {precision.name} on this CPU ({probe_summary(probe)})")
    torch.backends.cudnn.benchmark = device.type == "cuda"
    run_id = reference = None
    if world.is_main:  # only rank 0 scores, talks to MLflow and writes outputs
        shape = tuple(images.shape[1:])
        reference = load_reference(config, data, *scoring, shape, device)
        run_id = outputs.start_run(config, paths, run_fingerprint(config, images, labels))
    run_id = distributed.broadcast(run_id, world)
    fit = functools.partial(
        train,
        config,
        images,
        labels,
        n_classes=n_classes,
        device=device,
        precision=precision,
        checkpoint_path=paths.checkpoint,
        run_id=run_id,
        reference=reference,
    )
    if not world.is_main:
        fit()  # the other ranks train, rank 0 does the rest
        return
    with tracking.open_run(run_id, system_metrics=True):
        _tag_run(config, images, device, precision, {"processes": world.size}, probe)
        saved = {"model": config.model, "spec": dataclasses.asdict(spec), "latent": config.latent}
        saved["precision"] = precision.name
        columns = history_columns_of(config)
        result = fit(hooks=_noise_hooks(paths, config, saved, columns))
        extra = _semi_supervised(data, paths, config, result, spec, device, precision)
        best_net, best_step = _save_generators(paths, result, saved)
        name, info = outputs.registered_model_name(config), saved | {"step": best_step}
        outputs.finish(
            paths,
            result,
            columns=columns,
            generator=result.netG,
            train_images=len(images),
            images_seen=result.images_seen,
            extra=extra,
            ran_on=_ran_on(device, precision),
            log_model=lambda: tracking.log_generator(
                best_net.cpu().float(), config.z_dim, name, info
            ),
        )
        print(f"trained {result.steps} steps; {tracking.run_url(run_id)}")


def _noise_hooks(paths: outputs.TrainOutputs, config: Config, saved: dict, columns) -> Hooks:
    """The tracking hooks, and snapshots staged beside the checkpoint with the generator's info
    (what a generator file holds besides its weights)."""
    hooks = outputs.tracking_hooks(paths, columns, config.render.nrow)
    hooks.on_snapshot = functools.partial(
        snapshots.save, folder=paths.staging, generator_info=saved, columns=columns
    )
    return hooks


def _ran_on(device: torch.device, precision: Precision) -> dict[str, str]:
    """What the run trained on: its MLflow tags, and the train stage's info file."""
    return {"device": device.type, "precision": precision.name}


def _tag_run(
    config: Config, images: torch.Tensor, device, precision, tags: dict, probe: dict | None = None
) -> None:
    """The run's device, precision (and what the precision probe timed) and other tags, and the
    training data in MLflow's Datasets."""
    probed = {f"precision_probe_{k}": v for k, v in (probe or {}).items()}
    tracking.set_tags(_ran_on(device, precision) | tags | probed)
    source = datasets.source_of(config.dataset, config.download.image_folder)
    tracking.log_dataset(config.dataset, datasets.digest(images), source)


def _save_generators(
    paths: outputs.TrainOutputs, result: TrainResult, saved: dict
) -> tuple[torch.nn.Module, int]:
    """The last generator and the best-scored one (the last when nothing was scored) as files;
    (the best one as a network, its step)."""
    last = result.netG.state_dict()
    best = last if result.best_state is None else result.best_state
    best_step = result.steps if result.best_step is None else result.best_step
    checkpoint.save(paths.generator, saved | {"state_dict": last, "step": result.steps})
    checkpoint.save(paths.best_generator, saved | {"state_dict": best, "step": best_step})
    best_net = copy.deepcopy(result.netG)
    best_net.load_state_dict(best)
    return best_net, best_step


def _semi_supervised(data: Path, paths, config, result, spec, device, precision) -> dict:
    """The semi-supervised GAN's D saved, and its test accuracy beside the labeled-only one's."""
    if result.labeled is None:
        return {}
    semi_supervised.save_classifier(paths.discriminator, result.netD, config.model, spec)
    test = datasets.load_images(config.dataset, data, False, size=config.image_size)
    return semi_supervised.report(
        result.netD,
        result.labeled,
        config,
        spec,
        result.steps,
        test,
        device=device,
        precision=precision,
    )


def train_translator(
    data: Path, paths: outputs.TrainOutputs, config: Config, device: torch.device
) -> None:
    """pix2pix / CycleGAN: the same outputs as the noise models, from translate's loop."""
    task = _training_domains(config, data)
    precision = resolve_precision(config.precision, device)
    run_id = outputs.start_run(config, paths, run_fingerprint(config, task.source, task.target))
    with tracking.open_run(run_id, system_metrics=True):
        names, shape = " -> ".join(task.names), tuple(task.source.shape[1:])
        tags = {"translation": names, "task": domains.task_of(config)}
        _tag_run(config, task.source, device, precision, tags)
        kind = "paired" if task.paired else "unpaired"
        sizes = f"{len(task.source)} source and {len(task.target)} target images ({kind})"
        print(f"{config.model}: {names}, {sizes}")
        columns = history_columns(translation.TranslationStep)
        nrow = translation.n_columns(config.model, task.paired)
        result = translation.train_translator(
            config,
            task,
            device=device,
            precision=precision,
            checkpoint_path=paths.checkpoint,
            run_id=run_id,
            hooks=outputs.tracking_hooks(paths, columns, nrow),
        )
        spec = translation.translator_spec(config, shape)
        for path in (paths.generator, paths.best_generator):  # no scoring while training: last
            translation.save_translator(path, result.nets, config, spec, task, precision)
        G = copy.deepcopy(result.nets["G"]).cpu().float()
        info = {"kind": "translator", "model": config.model, "domains": list(task.names)}
        outputs.finish(
            paths,
            result,
            columns=columns,
            generator=result.nets["G"],
            train_images=len(task.source),
            images_seen=result.images_seen,
            extra={},
            ran_on=_ran_on(device, precision),
            log_model=lambda: tracking.log_translator(
                G, shape, outputs.registered_model_name(config), info
            ),
        )
        print(f"trained {result.steps} steps; {tracking.run_url(run_id)}")


def _training_domains(config: Config, data: Path) -> domains.Domains:
    """The translation task's training domains, verified, train.subset of each, at least a batch."""
    datasets.verify(config.dataset, data, config.download.trusted_md5)
    task = domains.load_domains(config, data, train=True, limit=config.train.subset)
    smaller = min(len(task.source), len(task.target))
    if smaller < config.batch_size:
        raise datasets.DataError(
            f"{' -> '.join(task.names)}: {smaller} training images in the smaller domain but "
            f"batch_size = {config.batch_size}: lower batch_size or raise train.subset"
        )
    return task
