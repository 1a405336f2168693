"""Output of an evaluation: metrics/eval.json, the Markdown report, plots, and one MLflow run tagged stage=evaluate."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from eval.evaluate import EvaluationResult
from eval.metrics import flatten_metrics, validate_metrics
from eval.report import write_plots, write_report
from stargan_core.config import Config
from stargan_core.tracking import RUN_ID_FILE, MlflowRun, git_commit, tracking_uri, write_json

log = logging.getLogger(__name__)


def save_evaluation(result: EvaluationResult, metrics_path: str | Path, report_path: str | Path | None = None,
                    plots_dir: str | Path | None = None) -> dict[str, Path]:
    """Validate the metrics, then write the plots, the report and the metrics JSON; return the written files.

    Raises DataError (and writes nothing) when a metric is missing, not a number, NaN or infinite.
    """
    validate_metrics(result.metrics)
    written: dict[str, Path] = {}
    plots = write_plots(result.metrics, result.details, Path(plots_dir)) if plots_dir else {}
    written.update({f"plot:{name}": path for name, path in plots.items()})
    if report_path:
        written["report"] = write_report(result.metrics, result.details, Path(report_path), plots)
    written["metrics"] = write_json(metrics_path, result.metrics)
    log.info("wrote %s", metrics_path)
    return written


def training_run_id(checkpoint: str | Path) -> str | None:
    """Return the MLflow run id that `stargan train` stored beside a checkpoint, or None."""
    path = Path(checkpoint)
    for folder in (path, path.parent, path.parent.parent):
        marker = folder / RUN_ID_FILE
        if marker.is_file():
            return marker.read_text(encoding="utf-8").strip() or None
    return None


def log_evaluation(cfg: Config, result: EvaluationResult, written: dict[str, Path]) -> str:
    """Log the metrics, settings and files of an evaluation to a new MLflow run and return its id.

    Tags: ``stage=evaluate``, the git commit, the input paths and ``train_run_id.<slot>`` for each checkpoint whose
    training run folder names its MLflow run.
    """
    tags = {"stage": "evaluate", "git_commit": git_commit()}
    for key, value in result.details.get("inputs", {}).items():
        if value:
            tags[f"input.{key}"] = str(value)
            if key.endswith("_checkpoint"):
                run_id = training_run_id(value)
                if run_id:
                    tags[f"train_run_id.{key.removesuffix('_checkpoint')}"] = run_id
    # MlflowRun reopens the run named in its folder; a fresh folder makes every evaluation a new run.
    with tempfile.TemporaryDirectory(prefix="stargan-eval-") as folder:
        run = MlflowRun(tracking_uri(cfg.tracking.tracking_uri), cfg.tracking.experiment, Path(folder), "evaluate",
                        tags)
    try:
        run.log_params(cfg.flat())
        run.log_metrics(flatten_metrics(result.metrics), step=0)
        for name, path in written.items():
            run.log_artifact(path, "evaluation/plots" if name.startswith("plot:") else "evaluation")
    except BaseException:
        run.finish("FAILED")
        raise
    run.finish()
    log.info("logged the evaluation to MLflow run %s", run.run_id)
    return run.run_id
