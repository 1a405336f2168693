"""Run records: Python logging for people, a CSV metrics file for DVC plots, and MLflow for comparing runs.

The MLflow store is ``tracking.tracking_uri`` (default ``sqlite:///mlflow.db`` in the working folder) unless the
``MLFLOW_TRACKING_URI`` environment variable names another one, such as a remote ``http://`` server.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RUN_ID_FILE = "mlflow_run_id"


def tracking_uri(configured: str) -> str:
    """Return MLFLOW_TRACKING_URI when set, else the configured URI."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured


def git_commit(cwd: str | Path = ".") -> str:
    """Return the current git commit (with a -dirty suffix for uncommitted changes), or 'unknown'."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def data_version(folder: str | Path) -> str:
    """Return the DVC md5 of a prepared data folder from dvc.lock, else an md5 of its manifest.json, else 'unknown'."""
    folder = Path(folder)
    lock = Path("dvc.lock")
    if lock.is_file():
        import yaml

        try:
            stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
        except yaml.YAMLError:
            stages = {}
        target = os.path.normpath(str(folder))
        for stage in stages.values():
            for out in stage.get("outs", []) or []:
                if os.path.normpath(out.get("path", "")) == target and out.get("md5"):
                    return str(out["md5"])
    manifest = folder / "manifest.json"
    if manifest.is_file():
        return "manifest-md5:" + hashlib.md5(manifest.read_bytes()).hexdigest()
    return "unknown"


class MetricsFile:
    """A CSV file of metrics by step, appended as training runs and truncated past the step a run resumes from."""

    def __init__(self, path: str | Path, columns: list[str], resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.columns = ["step"] + columns
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as handle:
                kept = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_step]
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, self.path)

    def append(self, step: int, values: dict[str, float]) -> None:
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            writer.writerow({"step": step, **{k: f"{v:.6g}" for k, v in values.items()}})


class MlflowRun:
    """One MLflow run, reopened when training resumes; metrics of steps already stored are not logged again."""

    def __init__(self, uri: str, experiment: str, run_dir: Path, run_name: str, tags: dict[str, str]) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        self.uri = uri
        self.last_logged_step = -1
        run_id_file = run_dir / RUN_ID_FILE
        run_id = run_id_file.read_text(encoding="utf-8").strip() if run_id_file.is_file() else ""
        self.resumed = False
        if run_id:
            try:
                run = self.client.get_run(run_id)
                self.resumed = True
                self.run_id = run.info.run_id
                history = self.client.get_metric_history(self.run_id, "lr/G")
                self.last_logged_step = max((m.step for m in history), default=-1)
                self.client.update_run(self.run_id, status="RUNNING")
            except Exception as exc:  # the store may have been deleted or moved; start a new run then
                log.warning("MLflow run %s not found in %s (%s); starting a new run", run_id, uri, exc)
        if not self.resumed:
            found = self.client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
            run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
            self.run_id = run.info.run_id
            run_id_file.write_text(self.run_id + "\n", encoding="utf-8")
        log.info("MLflow run %s in %s (%s)", self.run_id, uri, "resumed" if self.resumed else "new")

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        if step <= self.last_logged_step:
            return
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in values.items() if math.isfinite(float(v))]
        self.client.log_batch(self.run_id, metrics=items)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def log_pytorch_model(self, model: Any, name: str) -> None:
        import mlflow
        import mlflow.pytorch

        import torch

        import stargan_core

        mlflow.set_tracking_uri(self.uri)
        with mlflow.start_run(run_id=self.run_id):
            # Pickle format with the package source attached, so mlflow.pytorch.load_model needs no install of
            # this project. The explicit requirement list skips MLflow's slow inference of it.
            mlflow.pytorch.log_model(
                model, name=name, serialization_format="pickle",
                code_paths=[str(Path(stargan_core.__file__).parent)],
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            )

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write strict JSON (no NaN or infinity) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
