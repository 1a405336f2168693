"""Checkpoint files: atomic writes, rotation, the latest pointer and safe loading."""

import os
import pickle

import pytest
import torch

from stargan_core import checkpoint as ckpt
from stargan_core.errors import CheckpointError


def _payload(value: float) -> dict:
    return {"G": {"w": torch.full((2,), value)}, "labels": {"datasets": []}, "model": {}, "config": {}}


def test_save_rotate_and_latest(tmp_path):
    for step in (10, 20, 30, 40):
        ckpt.save_checkpoint(tmp_path, step, _payload(step), keep_last=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [30, 40]
    assert ckpt.latest_checkpoint(tmp_path).name == "step_00000040.pt"
    loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded["step"] == 40
    assert loaded["G"]["w"].tolist() == [40.0, 40.0]


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path, 10, _payload(1.0), keep_last=3)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(tmp_path, 20, _payload(2.0), keep_last=3)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert ckpt.load_checkpoint(tmp_path)["step"] == 10


def test_partial_file_from_a_kill_is_ignored(tmp_path):
    ckpt.save_checkpoint(tmp_path, 10, _payload(1.0), keep_last=3)
    # A process killed inside torch.save leaves only its temporary file behind.
    (tmp_path / ".step_00000020.pt.abc.tmp").write_bytes(b"\x00" * 10)
    assert ckpt.load_checkpoint(tmp_path)["step"] == 10


def test_arbitrary_pickles_are_not_executed(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "step_00000001.pt"
    with open(path, "wb") as handle:
        pickle.dump({"format": ckpt.FORMAT, "obj": Exploit()}, handle)
    with pytest.raises(CheckpointError, match="contains objects other than tensors"):
        ckpt.load_checkpoint(path)


def test_empty_and_text_files_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is empty \(0 bytes\)"):
        ckpt.load_checkpoint(empty)
    text = tmp_path / "notes.pt"
    text.write_text("e=1\n")
    with pytest.raises(CheckpointError, match="is not a PyTorch file or is damaged"):
        ckpt.load_checkpoint(text)


def test_damaged_newest_checkpoint_names_older_ones(tmp_path):
    ckpt.save_checkpoint(tmp_path, 6, _payload(1.0), keep_last=3)
    ckpt.save_checkpoint(tmp_path, 8, _payload(2.0), keep_last=3)
    newest = tmp_path / "step_00000008.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="older checkpoints in .*: step_00000006.pt"):
        ckpt.load_checkpoint(tmp_path)


def test_foreign_and_missing_files(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="import-official"):
        ckpt.load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "absent.pt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        ckpt.load_checkpoint(empty)
