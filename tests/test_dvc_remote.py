"""Prepared CelebA as DVC-tracked data: push to a local-folder remote, clone elsewhere, pull, same bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stargan_core.config import CELEBA_ATTRIBUTES
from stargan_core.prepare import prepare_celeba

DVC = Path(sys.executable).parent / "dvc"
PREPARED_FILES = ("images.npy", "labels.csv", "manifest.json")


def _run(*command: str | Path, cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_prepared_data_round_trips_through_dvc_remote(celeba_sample: Path, tmp_path: Path) -> None:
    if not DVC.is_file():
        pytest.skip(f"dvc not found at {DVC}; install the project with pip install -e .")
    repo, clone, remote = tmp_path / "repo", tmp_path / "clone", tmp_path / "remote"
    repo.mkdir()
    remote.mkdir()
    _run("git", "init", "-q", cwd=repo)
    _run("git", "config", "user.name", "StarGAN test", cwd=repo)
    _run("git", "config", "user.email", "stargan-test@example.invalid", cwd=repo)
    _run(DVC, "init", "-q", cwd=repo)

    prepared = repo / "data" / "prepared" / "celeba"
    prepare_celeba(
        celeba_sample / "images", celeba_sample / "list_attr_celeba.txt", prepared,
        selected_attrs=CELEBA_ATTRIBUTES, test_size=100, workers=2,
    )
    _run(DVC, "add", "-q", "data/prepared/celeba", cwd=repo)
    _run(DVC, "remote", "add", "-d", "local", str(remote), cwd=repo)
    _run(DVC, "push", "-q", cwd=repo)
    _run("git", "add", "-A", cwd=repo)
    _run("git", "commit", "-q", "-m", "Track prepared CelebA with DVC", cwd=repo)

    _run("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    _run(DVC, "remote", "add", "-f", "-d", "local", str(remote), cwd=clone)
    assert not (clone / "data" / "prepared" / "celeba").exists()
    _run(DVC, "pull", "-q", cwd=clone)
    for name in PREPARED_FILES:
        pulled = clone / "data" / "prepared" / "celeba" / name
        assert pulled.read_bytes() == (prepared / name).read_bytes(), name
    status = _run(DVC, "status", cwd=clone)
    assert "up to date" in status.lower() or status.strip() == "", status
