"""Checkpoints: one file per saved step, written atomically, rotated, loaded without unpickling objects.

A checkpoint ``checkpoints/step_00010000.pt`` contains G and D weights, both optimizer states, the step, the RNG
states, the label space and the resolved config. ``checkpoints/latest`` names the newest complete file. Files are
loaded with ``torch.load(..., weights_only=True)``, which accepts tensors and plain containers only.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from stargan_core.errors import CheckpointError, first_line
from stargan_core.labels import LabelSpace
from stargan_core.models import Discriminator, Generator

log = logging.getLogger(__name__)

FORMAT = "stargan-checkpoint"
VERSION = 1
STEP_FILE = re.compile(r"^step_(\d{8})\.pt$")


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"step_{step:08d}.pt"


def atomic_torch_save(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` so that a crash leaves either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """Return (step, path) of every complete checkpoint file in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = STEP_FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory: str | Path) -> Path | None:
    """Return the newest checkpoint in ``directory`` (the one ``latest`` names, else the highest step), or None."""
    directory = Path(directory)
    pointer = directory / "latest"
    if pointer.is_file():
        candidate = directory / pointer.read_text(encoding="utf-8").strip()
        if candidate.is_file():
            return candidate
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def save_checkpoint(directory: str | Path, step: int, payload: dict[str, Any], keep_last: int) -> Path:
    """Save ``payload`` as the checkpoint of ``step``, point ``latest`` at it and delete all but the newest keep_last."""
    directory = Path(directory)
    path = checkpoint_path(directory, step)
    atomic_torch_save({"format": FORMAT, "version": VERSION, "step": step, **payload}, path)
    _write_text_atomic(directory / "latest", path.name + "\n")
    for _, old in list_checkpoints(directory)[:-keep_last]:
        old.unlink(missing_ok=True)
    log.info("saved checkpoint %s", path)
    return path


def safe_torch_load(path: Path, map_location: str | torch.device = "cpu", what: str = "checkpoint") -> Any:
    """Load a file with ``torch.load(weights_only=True)``; raise CheckpointError with the reason and the fix."""
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} {path} is empty (0 bytes); it was not written completely, use another file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        with path.open("rb") as handle:
            is_pickle = handle.read(1) == b"\x80"  # the PROTO opcode that starts pickle protocol 2 and later
        # The weights-only unpickler blocks classes, functions and pickle opcodes it does not allow.
        if is_pickle and ("Unsupported global" in text or "Unsupported operand" in text):
            raise CheckpointError(
                f"{what} {path} contains objects other than tensors and plain containers, so it is not loaded "
                f"(unpickling could run arbitrary code); re-save it as a state dict"
            ) from exc
        detail = text.split("WeightsUnpickler error:")[-1].strip().splitlines()[0] if "WeightsUnpickler" in text \
            else first_line(exc)
        raise CheckpointError(f"{what} {path} is not a PyTorch file or is damaged ({detail})") from exc
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise CheckpointError(f"{what} {path} is not a PyTorch file or is damaged ({first_line(exc)})") from exc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` (or a folder holding some), with weights_only=True."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path) or latest_checkpoint(path / "checkpoints")
        if found is None:
            raise CheckpointError(f"no checkpoint (step_*.pt) found in {path}; pass the path of a .pt file")
        path = found
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = safe_torch_load(path, map_location, "checkpoint")
    except CheckpointError as exc:
        older = [p.name for _, p in list_checkpoints(path.parent) if p != path]
        if older:
            raise CheckpointError(f"{exc}; older checkpoints in {path.parent}: {', '.join(older)} "
                                  f"(delete the damaged file to resume from the newest of them)") from exc
        raise
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a StarGAN checkpoint of this project; official two-file checkpoints "
            f"(<step>-G.ckpt, <step>-D.ckpt) are converted with `stargan import-official`"
        )
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has format version {payload['version']}; upgrade stargan to read it")
    payload["path"] = str(path)
    return payload


def model_spec(G: Generator, D: Discriminator | None) -> dict[str, int]:
    """Return the sizes needed to rebuild G (and D) from a checkpoint."""
    spec = {"g_conv_dim": G.conv_dim, "g_repeat_num": G.repeat_num, "g_c_dim": G.c_dim}
    if D is not None:
        spec.update(image_size=D.image_size, d_conv_dim=D.conv_dim, d_repeat_num=D.repeat_num, d_c_dim=D.c_dim)
    return spec


def build_models(payload: dict[str, Any], with_discriminator: bool = False) -> tuple[Generator, Discriminator | None]:
    """Rebuild G (and D when requested and present) with the checkpoint's weights."""
    spec = payload["model"]
    G = Generator(spec["g_conv_dim"], spec["g_c_dim"], spec["g_repeat_num"])
    G.load_state_dict(payload["G"])
    D = None
    if with_discriminator:
        if payload.get("D") is None:
            raise CheckpointError(f"{payload.get('path', 'checkpoint')} contains no discriminator")
        D = Discriminator(spec["image_size"], spec["d_conv_dim"], spec["d_c_dim"], spec["d_repeat_num"])
        D.load_state_dict(payload["D"])
    return G, D


def label_space(payload: dict[str, Any]) -> LabelSpace:
    """Return the label space the checkpoint's generator was trained with."""
    return LabelSpace.from_dict(payload["labels"])


def rng_state() -> dict[str, Any]:
    """Return the torch CPU and CUDA RNG states (the training loop itself draws from per-step generators)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore RNG states saved by ``rng_state``; they may have been loaded onto a GPU by ``map_location``."""
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
