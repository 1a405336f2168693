"""Training loop: schedule, one run per dataset mode, checkpoints, and resume equal to an uninterrupted run."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY_OVERRIDES
from stargan_core.checkpoint import list_checkpoints, load_checkpoint
from stargan_core.config import load_config
from stargan_core.errors import CheckpointError, DataError
from stargan_core.train import learning_rate, train


def tiny_config(prepared, *extra):
    data = [f"data.celeba_dir={prepared['celeba']}", f"data.rafd_dir={prepared['rafd']}"]
    return load_config(None, TINY_OVERRIDES + data + list(extra))


def test_learning_rate_constant_then_linear_to_zero():
    assert learning_rate(1, 1e-4, 200_000, 100_000) == 1e-4
    assert learning_rate(100_000, 1e-4, 200_000, 100_000) == 1e-4
    assert learning_rate(150_000, 1e-4, 200_000, 100_000) == pytest.approx(5e-5)
    assert learning_rate(199_999, 1e-4, 200_000, 100_000) == pytest.approx(1e-9)
    assert learning_rate(200_000, 1e-4, 200_000, 100_000) == 0.0
    assert learning_rate(10, 1e-4, 20, 0) == 1e-4


@pytest.mark.parametrize("dataset", ["CelebA", "RaFD", "Both"])
def test_two_step_run_each_dataset(tmp_path, tiny_prepared, dataset):
    cfg = tiny_config(tiny_prepared, f"train.dataset={dataset}", "train.num_iters=2", "train.num_iters_decay=1",
                      "train.n_critic=1")
    summary = train(cfg, tmp_path / "run")
    assert summary["step"] == 2
    assert summary["finished"] is True
    payload = load_checkpoint(tmp_path / "run")
    assert payload["step"] == 2
    assert set(payload) >= {"G", "D", "opt_G", "opt_D", "rng", "labels", "model", "config"}
    expected_dim = {"CelebA": 5, "RaFD": 8, "Both": 15}[dataset]
    assert payload["model"]["g_c_dim"] == expected_dim
    assert payload["model"]["d_c_dim"] == {"CelebA": 5, "RaFD": 8, "Both": 13}[dataset]
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    names = ["CelebA", "RaFD"] if dataset == "Both" else [dataset]
    assert grids == [f"00000002-{name}.png" for name in names]
    with open(tmp_path / "run" / "train_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2]
    prefix = "CelebA/" if dataset == "Both" else ""
    assert float(rows[-1]["lr/G"]) == 0.0
    for key in ("D/loss_real", "D/loss_fake", "D/loss_cls", "D/loss_gp", "G/loss_rec", "G/loss_cls"):
        assert rows[-1][prefix + key] != ""


def test_sample_grid_has_input_and_every_domain(tmp_path, tiny_prepared):
    from PIL import Image

    cfg = tiny_config(tiny_prepared, "train.num_iters=1", "train.num_iters_decay=0")
    train(cfg, tmp_path / "run")
    grid = Image.open(tmp_path / "run" / "samples" / "00000001-CelebA.png")
    # 2 rows (num_sample_images) by 1 input + 5 domains, 32 px tiles with 2 px padding.
    assert grid.size == (6 * 34 + 2, 2 * 34 + 2)


def test_checkpoints_rotate_and_refuse_overwrite(tmp_path, tiny_prepared):
    cfg = tiny_config(tiny_prepared, "train.num_iters=6", "train.model_save_step=2", "train.keep_last=2",
                      "train.num_iters_decay=0")
    train(cfg, tmp_path / "run")
    assert [step for step, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [4, 6]
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == "step_00000006.pt"
    with pytest.raises(CheckpointError, match="pass --resume"):
        train(cfg, tmp_path / "run")


def test_resume_rejects_other_architecture(tmp_path, tiny_prepared):
    train(tiny_config(tiny_prepared, "train.num_iters=1", "train.num_iters_decay=0"), tmp_path / "run")
    other = tiny_config(tiny_prepared, "model.g_conv_dim=16", "train.num_iters=2", "train.num_iters_decay=0")
    with pytest.raises(CheckpointError, match=r"other values of model\.g_conv_dim"):
        train(other, tmp_path / "run", resume=True)


def test_image_size_mismatch_is_an_error(tmp_path, tiny_prepared):
    cfg = tiny_config(tiny_prepared, "data.image_size=64")
    with pytest.raises(DataError, match="images are 32 px but data.image_size is 64"):
        train(cfg, tmp_path / "run")


def test_missing_prepared_data_is_an_error(tmp_path, tiny_prepared):
    cfg = tiny_config(tiny_prepared, f"data.celeba_dir={tmp_path / 'absent'}")
    with pytest.raises(DataError, match="prepare the dataset first"):
        train(cfg, tmp_path / "run")


def _cli_train(out: Path, prepared, *extra: str) -> None:
    overrides = TINY_OVERRIDES + [f"data.celeba_dir={prepared['celeba']}", f"data.rafd_dir={prepared['rafd']}"]
    command = [sys.executable, "-m", "components.cli", "train", "--params", str(Path(__file__).parents[1] / "params.yaml"),
               "--out", str(out), *extra]
    for item in overrides:
        command += ["--set", item]
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=Path(__file__).parents[1])


@pytest.mark.slow
def test_resume_in_new_process_equals_straight_run(tmp_path, tiny_prepared):
    _cli_train(tmp_path / "straight", tiny_prepared)
    _cli_train(tmp_path / "halves", tiny_prepared, "--stop-at-step", "5")
    first_half = load_checkpoint(tmp_path / "halves")
    assert first_half["step"] == 5
    _cli_train(tmp_path / "halves", tiny_prepared, "--resume")
    straight, resumed = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "halves")
    assert resumed["step"] == straight["step"] == 10
    # G is updated in both halves (n_critic 2): its weights moved after step 5.
    moved = any(not torch.equal(first_half["G"][k], resumed["G"][k]) for k in resumed["G"])
    assert moved
    for key in ("G", "D"):
        for name, tensor in straight[key].items():
            assert torch.equal(tensor, resumed[key][name]), f"{key}.{name} differs after resume"
    for key in ("opt_G", "opt_D"):
        for index, state in straight[key]["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(resumed[key]["state"][index][name]))
        assert straight[key]["param_groups"] == resumed[key]["param_groups"]
    with open(tmp_path / "halves" / "train_log.csv") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == list(range(1, 11))


def test_restart_on_change_starts_over(tmp_path, tiny_prepared):
    train(tiny_config(tiny_prepared, "train.num_iters=2", "train.num_iters_decay=0"), tmp_path / "run")
    longer = tiny_config(tiny_prepared, "train.num_iters=3", "train.num_iters_decay=0")
    assert train(longer, tmp_path / "run", resume=True, restart_on_change=True)["iterations_run"] == 1
    changed = tiny_config(tiny_prepared, "loss.lambda_rec=5", "train.num_iters=3", "train.num_iters_decay=0")
    summary = train(changed, tmp_path / "run", resume=True, restart_on_change=True)
    assert summary["iterations_run"] == 3
    assert load_checkpoint(tmp_path / "run")["config"]["loss"]["lambda_rec"] == 5.0


def test_resume_rejects_changed_settings(tmp_path, tiny_prepared):
    train(tiny_config(tiny_prepared, "train.num_iters=2", "train.num_iters_decay=0"), tmp_path / "run")
    changed = tiny_config(tiny_prepared, "train.g_lr=2e-4", "loss.lambda_rec=5", "train.num_iters=3",
                          "train.num_iters_decay=0")
    with pytest.raises(CheckpointError, match=r"other values of loss\.lambda_rec, train\.g_lr; .*--restart-on-change"):
        train(changed, tmp_path / "run", resume=True)
    shorter = tiny_config(tiny_prepared, "train.num_iters=1", "train.num_iters_decay=0")
    with pytest.raises(CheckpointError, match="is at step 2, past train.num_iters 1"):
        train(shorter, tmp_path / "run", resume=True)
