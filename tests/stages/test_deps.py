"""dvc.yaml's deps cover every file each stage runs, so editing one reruns the stage."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """The source file of a ganlab module (None for names that aren't modules)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).resolve() if spec and spec.origin else None


def imported_modules(path: Path, package: str) -> set[str]:
    """Every ganlab module `path` imports, at any depth of the file (lazy imports count)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {name for name in names if name == "ganlab" or name.startswith("ganlab.")}


def import_closure(module: str) -> set[Path]:
    """The files Python runs for `python -m module`: its imports and their packages' __init__s."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            path = module_file(".".join(parts[:depth]))
            if path is None or path in seen:
                continue
            seen.add(path)
            package = (
                ".".join(parts[:depth])
                if path.name == "__init__.py"
                else ".".join(parts[: depth - 1])
            )
            todo.extend(imported_modules(path, package))
    return seen


def stage_modules() -> dict[str, str]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {
        name: next(word for word in stage["cmd"].split() if word.startswith("ganlab."))
        for name, stage in stages.items()
    }


def uncovered(stage: str, module: str) -> list[str]:
    deps = [
        REPO / dep
        for dep in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"]
    ]
    return sorted(
        str(path.relative_to(REPO))
        for path in import_closure(module)
        if not any(path == dep or dep in path.parents for dep in deps)
    )


@pytest.mark.parametrize(("stage", "module"), stage_modules().items())
def test_every_file_a_stage_imports_is_one_of_its_deps(stage, module):
    assert import_closure(module), f"{module} was not found"
    assert uncovered(stage, module) == [], f"dvc.yaml: stage {stage} misses these deps"


def covered(stage: str) -> set[Path]:
    """The src files a stage's deps name (a folder dep names every file in it)."""
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"]
    paths = {REPO / dep for dep in deps if dep.startswith("src/")}
    return {f for p in paths for f in ([p] if p.suffix else p.rglob("*.py"))}


@pytest.mark.parametrize(("stage", "module"), stage_modules().items())
def test_a_stage_depends_on_no_file_it_does_not_import(stage, module):
    """An extra dep reruns a stage for nothing: editing a loss must not redo 5,000 Inception
    passes (fid_stats) or the classifier."""
    extra = sorted(str(p.relative_to(REPO)) for p in covered(stage) - import_closure(module))
    assert extra == [], f"dvc.yaml: stage {stage} depends on files it never imports"


def test_the_data_stages_import_no_model_loss_or_training_code():
    for stage in ("download", "fid_stats", "classifier"):
        closure = {str(p.relative_to(SRC)) for p in import_closure(f"ganlab.stages.{stage}")}
        assert not [p for p in closure if p.startswith(("ganlab/models", "ganlab/training"))]


def test_the_closure_follows_lazy_and_package_imports(tmp_path):
    closure = {str(p.relative_to(SRC)) for p in import_closure("ganlab.stages.render")}
    assert "ganlab/stages/__init__.py" in closure  # the package of the entry module
    assert "ganlab/plots.py" in closure  # imported at the top
    assert "ganlab/models/dcgan.py" in closure  # through models/__init__
    assert "ganlab/training/gan.py" not in closure  # render runs no training code


def test_the_download_stage_runs_no_training_loop_mlflow_or_metrics():
    closure = {str(p.relative_to(SRC)) for p in import_closure("ganlab.stages.download")}
    for heavy in ("gan.py", "translation.py", "distributed.py", "tracking.py", "fid.py"):
        assert not any(path.endswith(f"/{heavy}") and "models" not in path for path in closure)


def test_no_module_imports_a_stage_module():
    for path in (SRC / "ganlab").rglob("*.py"):
        if "stages" in path.parts:
            continue
        package = ".".join(path.relative_to(SRC).with_suffix("").parts[:-1])
        imported = imported_modules(path, package)
        assert not any(name.startswith("ganlab.stages") for name in imported), path


def _fake_outputs(stage: dict) -> str:
    """A command that writes every out of a stage in seconds: a file, or a folder holding one."""
    paths = [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]
    paths += [next(iter(m)) for m in stage.get("metrics", [])]
    code = "; ".join(
        f"p = pathlib.Path({path!r}); "
        + (
            "p.parent.mkdir(parents=True, exist_ok=True); p.write_text('{}')"
            if Path(path).suffix
            else "p.mkdir(parents=True, exist_ok=True); (p / 'x').write_text('x')"
        )
        for path in paths
    )
    return f'{sys.executable} -c "import pathlib; {code}"'


@pytest.mark.slow
def test_editing_any_imported_file_makes_dvc_status_report_its_stage(tmp_path):
    """The real pipeline's deps, with stage commands swapped for fast fakes: after a `dvc repro`,
    appending a comment to every src file must show up under each stage that imports it."""
    shutil.copytree(
        SRC, tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    shutil.copy(REPO / "params.yaml", tmp_path)
    shutil.copy(REPO / ".dvcignore", tmp_path)
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    pipeline.pop("plots", None)
    for stage in pipeline["stages"].values():
        stage["cmd"] = _fake_outputs(stage)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(pipeline))
    dvc = [sys.executable, "-m", "dvc"]
    for command in (["init", "--no-scm", "-q"], ["repro", "-q"]):
        subprocess.run([*dvc, *command], cwd=tmp_path, check=True, capture_output=True)

    def changed_deps() -> dict[str, set[str]]:
        out = subprocess.run(
            [*dvc, "status", "--json"], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout
        report = {}
        for stage, changes in json.loads(out or "{}").items():
            report[stage] = {
                path
                for change in changes
                if isinstance(change, dict)
                for path in change.get("changed deps", {})
            }
        return report

    assert changed_deps() == {}, "the fake pipeline should be up to date after dvc repro"
    for edited in ("training/losses.py", "models/dcgan.py"):  # the data stages run neither
        path = tmp_path / "src/ganlab" / edited
        path.write_text(path.read_text() + "\n# edited\n")
    assert {"download", "fid_stats", "classifier"} & set(changed_deps()) == set()
    for path in (tmp_path / "src").rglob("*.py"):
        path.write_text(path.read_text() + "\n# edited\n")
    report = changed_deps()
    for stage, module in stage_modules().items():
        for path in import_closure(module):
            relative = path.relative_to(REPO)
            assert any(
                relative == Path(dep) or Path(dep) in relative.parents
                for dep in report.get(stage, set())
            ), f"editing {relative} does not rerun stage {stage}: {sorted(report.get(stage, []))}"


def test_dvc_exp_show_leads_with_the_evaluation():
    """`dvc exp show` lists metrics files in dvc.yaml's order: eval.json (FID first) leads, and
    only the train stage adds another."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    declared = [next(iter(m)) for stage in stages.values() for m in stage.get("metrics", [])]
    assert declared == ["metrics/eval.json", "metrics/train.json"]


def test_the_generator_artifact_is_what_the_train_stage_writes():
    from dvc.repo import Repo

    [(_, artifacts)] = Repo(str(REPO)).artifacts.read().items()
    generator = artifacts["generator"]
    assert generator.type == "model"
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]
    assert f"--best-generator {generator.path}" in pipeline["cmd"]  # the one evaluate scores
    assert any(
        Path(generator.path).is_relative_to(out) for out in pipeline["outs"] if isinstance(out, str)
    )


def test_the_train_stage_reruns_for_every_param_that_shapes_training():
    import dataclasses

    from ganlab.config import _NOT_TRAINING, Config

    listed = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]["params"]
    listed = {key.split(".")[0] for key in listed if isinstance(key, str)}
    shaping = {f.name for f in dataclasses.fields(Config)} - _NOT_TRAINING
    assert shaping - listed == set(), "dvc.yaml's train stage misses these params"
