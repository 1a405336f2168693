"""Import of official StarGAN release checkpoints, checked against outputs of the official code."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stargan_core.checkpoint import build_models, label_space, load_checkpoint
from stargan_core.errors import CheckpointError
from stargan_core.official import import_official, load_official


def _inputs(folder: Path):
    return torch.from_numpy(np.load(folder / "input_x.npy")), torch.from_numpy(np.load(folder / "input_c.npy"))


def test_outputs_match_official_code(official_compat):
    G, D = load_official(official_compat / "1000-G.ckpt", official_compat / "1000-D.ckpt")
    assert (G.conv_dim, G.c_dim, G.repeat_num) == (8, 5, 2)
    assert (D.image_size, D.conv_dim, D.c_dim, D.repeat_num) == (32, 8, 5, 3)
    x, c = _inputs(official_compat)
    with torch.no_grad():
        y = G(x, c)
        out_src, out_cls = D(x)
    np.testing.assert_allclose(y.numpy(), np.load(official_compat / "expected_g_out.npy"), atol=1e-5, rtol=0)
    np.testing.assert_allclose(out_src.numpy(), np.load(official_compat / "expected_d_src.npy"), atol=1e-5, rtol=0)
    np.testing.assert_allclose(out_cls.numpy(), np.load(official_compat / "expected_d_cls.npy"), atol=1e-5, rtol=0)


def test_running_statistics_are_dropped(official_compat):
    G = load_official(official_compat / "1000-G.ckpt")
    assert not [name for name, _ in G.named_buffers()]


def test_import_command_writes_our_format(official_compat, tmp_path):
    out = tmp_path / "official.pt"
    subprocess.run(
        [sys.executable, "-m", "components.cli", "import-official", "--generator", str(official_compat / "1000-G.ckpt"),
         "--discriminator", str(official_compat / "1000-D.ckpt"), "--out", str(out)],
        check=True, capture_output=True, text=True, cwd=Path(__file__).parents[1],
    )
    payload = load_checkpoint(out)
    assert payload["step"] == 1000
    assert label_space(payload).datasets[0].names == ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
    assert payload["model"]["image_size"] == 32
    G, D = build_models(payload, with_discriminator=True)
    x, c = _inputs(official_compat)
    with torch.no_grad():
        np.testing.assert_allclose(G(x, c).numpy(), np.load(official_compat / "expected_g_out.npy"), atol=1e-5, rtol=0)
        np.testing.assert_allclose(D(x)[1].numpy(), np.load(official_compat / "expected_d_cls.npy"), atol=1e-5, rtol=0)


def test_label_count_must_match(official_compat, tmp_path):
    with pytest.raises(CheckpointError, match="expects 5 labels but --labels lists 2"):
        import_official(official_compat / "1000-G.ckpt", None, ["Male", "Young"], "CelebA", tmp_path / "x.pt")


def test_repeated_labels_and_existing_output(official_compat, tmp_path):
    with pytest.raises(CheckpointError, match="--labels names Male more than once"):
        import_official(official_compat / "1000-G.ckpt", None, ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Male"],
                        "CelebA", tmp_path / "x.pt")
    out = tmp_path / "exists.pt"
    out.write_bytes(b"keep")
    result = subprocess.run(
        [sys.executable, "-m", "components.cli", "import-official", "--generator", str(official_compat / "1000-G.ckpt"),
         "--out", str(out)], capture_output=True, text=True, cwd=Path(__file__).parents[1],
    )
    assert result.returncode == 2
    assert "already exists; pass --force" in result.stderr
    assert out.read_bytes() == b"keep"


def test_swapped_files_are_rejected(official_compat, tmp_path):
    with pytest.raises(CheckpointError, match="is it a discriminator"):
        load_official(official_compat / "1000-G.ckpt", official_compat / "1000-G.ckpt")
    with pytest.raises(CheckpointError, match=r"does not match a StarGAN generator \(Missing key.*is it a discr"):
        load_official(official_compat / "1000-D.ckpt")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_official(tmp_path / "200000-G.ckpt")
    bad = tmp_path / "200000-G.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a PyTorch file"):
        load_official(bad)
    bad.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        load_official(bad)
