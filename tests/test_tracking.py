"""MLflow records of training runs, read back through MlflowClient from a real store."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import mlflow.pytorch
import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import TINY_OVERRIDES
from stargan_core.checkpoint import build_models, load_checkpoint
from stargan_core.config import load_config
from stargan_core.train import train


def tiny_config(prepared, uri, *extra):
    data = [f"data.celeba_dir={prepared['celeba']}", f"data.rafd_dir={prepared['rafd']}"]
    return load_config(None, TINY_OVERRIDES + data + ["tracking.mlflow=true", f"tracking.tracking_uri={uri}",
                                                       "tracking.experiment=test"] + list(extra))


def _run(client: MlflowClient):
    experiment = client.get_experiment_by_name("test")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return runs[0]


@pytest.mark.slow
def test_training_run_is_recorded_and_resumed(tmp_path, tiny_prepared, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    train(tiny_config(tiny_prepared, uri, "train.num_iters=4", "train.num_iters_decay=2"), tmp_path / "run",
          stop_at_step=2)
    train(tiny_config(tiny_prepared, uri, "train.num_iters=4", "train.num_iters_decay=2"), tmp_path / "run",
          resume=True)
    client = MlflowClient(tracking_uri=uri)
    run = _run(client)
    assert run.info.status == "FINISHED"
    assert run.data.params["train.num_iters"] == "4"
    assert run.data.params["loss.lambda_gp"] == "10.0"
    assert run.data.params["data.selected_attrs"] == "Black_Hair,Blond_Hair,Brown_Hair,Male,Young"
    assert run.data.tags["git_commit"]
    assert run.data.tags["data_version.CelebA"].startswith("manifest-md5:")
    history = client.get_metric_history(run.info.run_id, "G/loss_rec")
    assert sorted(m.step for m in history) == [2, 4]  # G updates every n_critic = 2 iterations, logged once each
    lr = client.get_metric_history(run.info.run_id, "lr/G")
    assert sorted((m.step, m.value) for m in lr) == [(1, 1e-4), (2, 1e-4), (3, 5e-5), (4, 0.0)]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"samples", "checkpoints", "config.yaml"} <= artifacts
    samples = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "samples")}
    assert {"00000002-CelebA.png", "00000004-CelebA.png"} <= samples
    checkpoints = [Path(a.path).name for a in client.list_artifacts(run.info.run_id, "checkpoints")]
    assert checkpoints == ["step_00000002.pt", "step_00000004.pt"]  # the time-boxed half logs its checkpoint too

    mlflow.set_tracking_uri(uri)
    logged = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/generator")
    G, _ = build_models(load_checkpoint(tmp_path / "run"))
    x, c = torch.zeros(1, 3, 32, 32), torch.tensor([[1.0, 0, 0, 1, 0]])
    assert torch.allclose(logged(x, c), G(x, c))


@pytest.mark.slow
def test_logging_to_mlflow_server_over_http(tmp_path, tiny_prepared, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start within 90 s")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        cfg = tiny_config(tiny_prepared, "sqlite:///ignored.db", "train.num_iters=2", "train.num_iters_decay=0")
        train(cfg, tmp_path / "run")
        run = _run(MlflowClient(tracking_uri=uri))
        assert run.data.metrics["lr/G"] == pytest.approx(1e-4)
        assert "D/loss_gp" in run.data.metrics
        assert not (tmp_path / "ignored.db").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)
