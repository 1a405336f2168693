"""The main job end to end: `dvc exp run` with the quick profile on the real samples, then reruns and MLflow."""

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TEST_DATA

pytestmark = pytest.mark.slow

STAGES_AFTER_TRAINING = {"train_celeba", "train_rafd", "train_joint", "translate@celeba", "translate@rafd", "evaluate"}


def _copy_checkout(target: Path) -> None:
    """Copy the files git tracks or would track (the committed project plus uncommitted work) into ``target``."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _run(command: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-4000:]}"
    return output


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def _quick_overrides() -> list[str]:
    """Return the `dvc exp run -S` flags of profiles/quick.yaml, with the sample paths under TEST_DATA."""
    spec = importlib.util.spec_from_file_location("profile_flags", REPO / "scripts" / "profile_flags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flags = module.flags(REPO / "profiles" / "quick.yaml", "-S")
    return [flag.replace("'../shared/data/", f"'{TEST_DATA}/") for flag in flags]


def _set_param(project: Path, key: str, value) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    section, name = key.split(".")
    params[section][name] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _assert_numbers_only(path: Path) -> None:
    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        else:
            assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: {value!r} is not a number"
            assert math.isfinite(value), f"{path}: {value!r} is not finite"

    walk(json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{path} holds {name}")))


def test_quick_pipeline_reruns_and_mlflow(tmp_path, celeba_sample, expression_sample):
    project = tmp_path / "project"
    _copy_checkout(project)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.org",
               GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.org")
    env.pop("MLFLOW_TRACKING_URI", None)
    _run(["git", "init", "-q"], project, env)
    _run(["git", "add", "-A"], project, env)
    _run(["git", "commit", "-qm", "project"], project, env)

    first = _run(["dvc", "exp", "run", *_quick_overrides()], project, env)
    assert _ran(first) >= {"prepare_celeba", "prepare_rafd", "train_classifier@expression",
                           "train_classifier@attributes"} | STAGES_AFTER_TRAINING

    for name in ("celeba", "rafd", "joint"):
        run = project / "runs" / name
        assert (run / "checkpoints" / "step_00000040.pt").is_file()
        assert (run / "samples" / "00000040-CelebA.png").is_file() or name == "rafd"
        _assert_numbers_only(run / "metrics.json")
    for name in ("eval", "expression_classifier", "attributes_classifier"):
        _assert_numbers_only(project / "metrics" / f"{name}.json")
    assert (project / "reports" / "eval.md").is_file()
    translated = list((project / "outputs" / "translated" / "celeba").rglob("*.png"))
    assert len(translated) >= 100 * 5
    plots = _run(["dvc", "plots", "show", "--json"], project, env)
    assert "train_log.csv" in plots

    assert _ran(_run(["dvc", "repro"], project, env)) == set()

    _set_param(project, "train.num_iters", 44)
    assert _ran(_run(["dvc", "repro"], project, env)) == STAGES_AFTER_TRAINING
    assert (project / "runs" / "celeba" / "checkpoints" / "step_00000044.pt").is_file()

    _set_param(project, "eval.attribute_threshold", 0.6)
    assert _ran(_run(["dvc", "repro"], project, env)) == {"evaluate"}

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("stargan")
    runs = client.search_runs([experiment.experiment_id])
    train_runs = [r for r in runs if r.data.tags.get("stage") == "train"]
    assert sorted(r.data.tags["dataset"] for r in train_runs) == ["Both", "CelebA", "RaFD"]
    for run in train_runs:
        # The lengthened run continued the same MLflow run: params keep their first values, a tag records the change.
        assert run.data.params["train.num_iters"] == "40"
        assert run.data.tags["changed.train.num_iters"] == "44"
        assert run.data.params["model.g_conv_dim"] == "16"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "lr/G")]
        assert sorted(steps) == sorted(set(steps))
        assert max(steps) == 44
        versions = {k: v for k, v in run.data.tags.items() if k.startswith("data_version.")}
        assert versions
        assert all(v.endswith(".dir") for v in versions.values()), versions  # DVC md5 of the prepared folder
    evaluations = [r for r in runs if r.data.tags.get("stage") == "evaluate"]
    assert evaluations, "the evaluate stage logged no MLflow run"
