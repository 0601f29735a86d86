"""MLflow tracking: the only module that imports mlflow.

One MLflow run spans a whole pipeline run: train opens it and records its id as a
stage output; evaluate and render reopen it by that id. The default store is
`sqlite:///<repo root>/mlflow.db` with artifacts in `<repo root>/mlartifacts`, both
absolute so that queued DVC experiments (run in temporary copies) land in the same
store that `mlflow ui` reads from the repository root.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import RunStatus

from ganlab.errors import GanlabError
from ganlab.io import write_json
from ganlab.paths import repo_root

EXPERIMENT_NAME = "ganlab"


class TrackingError(GanlabError, RuntimeError):
    """The MLflow tracking store can't be reached or used."""


def read_run_id(path: Path) -> str:
    """The MLflow run id an earlier stage wrote to `path` (write_run_id)."""
    if not path.is_file():
        raise TrackingError(
            f"{path} is missing: expected the MLflow run id written by an earlier stage"
        )
    return json.loads(path.read_text(encoding="utf-8"))["mlflow_run_id"]


def write_run_id(path: Path, run_id: str) -> None:
    """The run's id for the stages after this one (dvc.yaml passes the file on)."""
    write_json(path, {"mlflow_run_id": run_id})


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def _experiment_id() -> str:
    """The ganlab experiment, created with an absolute artifact root on first use."""
    experiment = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if tracking_uri().startswith("sqlite:"):
        artifact_location = (repo_root() / "mlartifacts").as_uri()
    try:
        return mlflow.create_experiment(EXPERIMENT_NAME, artifact_location=artifact_location)
    except mlflow.exceptions.MlflowException:
        # Another queued experiment created it first.
        return mlflow.get_experiment_by_name(EXPERIMENT_NAME).experiment_id


def connect() -> str:
    """Point MLflow at the store and check it answers now, not after an hour of training."""
    uri = tracking_uri()
    if uri.startswith("http"):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    mlflow.set_tracking_uri(uri)
    try:
        return _experiment_id()
    except Exception as error:
        raise TrackingError(
            f"MLflow tracking store {uri} is not usable: {error}. "
            "Start the server or unset MLFLOW_TRACKING_URI to use the local store."
        ) from error


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo_root(),
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _run_name(default: str) -> str:
    return os.environ.get("DVC_EXP_NAME") or default


PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tags: the UI nests and links by them
GIT_COMMIT_TAG = "mlflow.source.git.commit"


def new_run(params: Mapping[str, Any], default_name: str, parent: str | None = None) -> str:
    """Create the pipeline's run with every param and its provenance tags; return its id.

    A `parent` run (the one that trained the model a re-scoring uses) nests this one."""
    experiment_id = connect()
    tags = {
        PARENT_TAG: parent,
        GIT_COMMIT_TAG: _git_commit(),
        "dvc_exp_name": os.environ.get("DVC_EXP_NAME"),
        "dvc_exp_baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV"),
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=_run_name(default_name)) as run:
        mlflow.set_tags({k: v for k, v in tags.items() if v})
        mlflow.log_params(dict(params))
        return run.info.run_id


def run_for_params(run_id: str, params: Mapping[str, Any], default_name: str) -> str:
    """The run a later stage logs into: `run_id` if it was made with these very params.

    When only evaluation or rendering params changed, DVC reuses the trained model
    and skips train; logging into the old run would overwrite its metrics, so a new
    run records the current params and points at the run that trained the model.
    """
    connect()
    try:
        logged = mlflow.get_run(run_id).data.params
    except mlflow.exceptions.MlflowException as error:
        raise TrackingError(f"MLflow run {run_id} is not in {tracking_uri()}: {error}") from error
    if logged == {key: str(value) for key, value in params.items()}:
        return run_id
    return new_run(params, default_name, parent=run_id)


@contextlib.contextmanager
def open_run(run_id: str, system_metrics: bool = False) -> Iterator[None]:
    """Reopen the pipeline's run; close it FINISHED, FAILED on error, KILLED on interrupt.

    system_metrics: MLflow samples CPU, memory (and GPU) use into system/* metrics."""
    connect()
    try:
        mlflow.start_run(run_id=run_id, log_system_metrics=system_metrics)
    except mlflow.exceptions.MlflowException as error:
        raise TrackingError(f"MLflow run {run_id} is not in {tracking_uri()}: {error}") from error
    try:
        yield
    except KeyboardInterrupt:
        mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        raise
    except BaseException:
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
        raise
    mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))


def log_dataset(name: str, digest: str, source: str, context: str = "training") -> None:
    """The data a run used, in MLflow's Datasets: its name, a digest of the pixels, its source."""
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    dataset = MetaDataset(HTTPDatasetSource(source), name=name, digest=digest)
    mlflow.log_input(dataset, context=context)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    mlflow.log_metrics(dict(metrics), step=step, timestamp=int(time.time() * 1000))


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_image(path: str | Path, key: str, step: int) -> None:
    """A picture as an MLflow image (not only an artifact): the chart view's image grid then
    shows it run beside run, with FID and the other metrics."""
    from PIL import Image

    with Image.open(path) as image:
        mlflow.log_image(image.convert("RGB"), key=key, step=step)


def log_artifacts(directory: str | Path, artifact_path: str | None = None) -> None:
    mlflow.log_artifacts(str(directory), artifact_path=artifact_path)


def set_tags(tags: Mapping[str, Any]) -> None:
    mlflow.set_tags(dict(tags))


def run_url(run_id: str) -> str:
    """A link to the run: on the tracking server, or on `mlflow ui`'s default local address."""
    uri = tracking_uri()
    experiment_id = mlflow.get_run(run_id).info.experiment_id
    if uri.startswith("http"):
        return f"MLflow run: {uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return (
        f"MLflow run: http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id} "
        f"(start `mlflow ui` in {repo_root()})"
    )


GENERATOR_MODEL = "generator"  # the run's logged model: the one stored copy of its generator


def log_generator(netG: Any, z_dim: int, registered_name: str, metadata: Mapping[str, Any]) -> None:
    """Log the generator as an MLflow model and register it under `registered_name`.

    Saved with torch.export (pt2), not pickle, with a signature and an input example
    (z, or [z, one-hot class] for a conditional G). `metadata` (the generator file's
    fields but its weights: model, spec, latent, step) is what ganlab needs to rebuild
    the network from these weights: the registered model is the run's only copy.
    """
    import numpy as np

    from ganlab.models.conditional import ConditionalGenerator, OneHotInput

    width = z_dim
    if isinstance(netG, ConditionalGenerator):  # one input tensor: [z, one_hot(class)]
        netG, width = OneHotInput(netG, z_dim), z_dim + netG.n_classes
    example = np.zeros((2, width), dtype=np.float32)
    _log_registered_model(netG, example, registered_name, metadata)


def _log_registered_model(
    net: Any, example: Any, registered_name: str, metadata: Mapping[str, Any]
) -> None:
    """Log `net` as a pt2 MLflow model with a signature from `example`, and register it."""
    import torch
    from mlflow.models import infer_signature

    with torch.no_grad():
        output = net(torch.from_numpy(example)).numpy()
    mlflow.pytorch.log_model(
        net,
        name=GENERATOR_MODEL,
        signature=infer_signature(example, output),
        input_example=example,
        registered_model_name=registered_name,
        serialization_format="pt2",
        metadata=_plain(metadata),
        pip_requirements=model_requirements(),
    )


def model_requirements() -> list[str]:
    """What loading the pt2 model needs: torch and numpy at this run's versions (MLflow adds
    itself). Named, not inferred: MLflow's inference loads the model in a subprocess (~10 s a
    run) and lists whatever that process imported (tqdm, pandas, pydot...)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("torch", "numpy")]


def _plain(value: Any) -> Any:
    """Metadata as YAML holds it: tuples as lists, all the way down."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def tag_model_versions(trained_run_id: str, metrics: Mapping[str, float]) -> list[str]:
    """Put the scores on the registered model versions the run trained; their names/versions."""
    client = mlflow.MlflowClient()
    tagged = []
    for version in client.search_model_versions(f"run_id = '{trained_run_id}'"):
        for key, value in metrics.items():
            client.set_model_version_tag(version.name, version.version, key, str(value))
        tagged.append(f"{version.name}/{version.version}")
    return tagged


def log_translator(
    net: Any, image_shape: tuple[int, ...], registered_name: str, metadata: Mapping[str, Any]
) -> None:
    """Log an image-to-image generator (pt2, images in [-1, 1] in and out) and register it."""
    import numpy as np

    example = np.zeros((2, *image_shape), dtype=np.float32)
    _log_registered_model(net, example, registered_name, metadata)


MODELS_URI = "models:/"


def model_run(source: str) -> str:
    """The run behind a registered model: MLflow's `models:/name/3` or `models:/name@alias`
    URIs, or the same without the scheme; a bare `name` means its latest version."""
    client = mlflow.MlflowClient()
    given, source = source, source.removeprefix(MODELS_URI)
    try:
        if "@" in source:
            name, alias = source.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        elif "/" in source:
            name, number = source.rsplit("/", 1)
            version = client.get_model_version(name, number)
        else:
            versions = client.search_model_versions(f"name = '{source}'")
            if not versions:
                raise TrackingError(f"no registered model named {source!r} in {tracking_uri()}")
            version = max(versions, key=lambda v: int(v.version))
    except mlflow.exceptions.MlflowException as error:
        raise TrackingError(f"registered model {given!r}: {error}") from error
    return version.run_id


def load_generator_weights(run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The weights and metadata of the generator a run logged; a re-scored run's are its
    parent's (the run that trained it). MLflow checks the pt2 archive holds no pickle."""
    try:
        run = mlflow.get_run(run_id)
    except mlflow.exceptions.MlflowException as error:
        raise TrackingError(f"MLflow run {run_id} is not in {tracking_uri()}: {error}") from error
    run_id = run.data.tags.get(PARENT_TAG, run_id)
    uri = f"runs:/{run_id}/{GENERATOR_MODEL}"
    try:
        metadata = mlflow.models.get_model_info(uri).metadata
        module = mlflow.pytorch.load_model(uri)
    except (mlflow.exceptions.MlflowException, OSError) as error:
        raise TrackingError(
            f"run {run_id} has no logged {GENERATOR_MODEL} model: {error}"
        ) from error
    if not metadata:
        raise TrackingError(
            f"{uri} was logged without ganlab's metadata (model, spec, latent): "
            "retrain it with this version of ganlab"
        )
    return module.state_dict(), metadata


def runs_frame() -> Any:
    """Every ganlab run as a pandas DataFrame (mlflow.search_runs' columns)."""
    experiment_id = connect()
    return mlflow.search_runs([experiment_id], output_format="pandas")
