"""Import checkpoints of the official StarGAN release (yunjey/stargan): ``<step>-G.ckpt`` and ``<step>-D.ckpt``.

Those files are state dicts whose InstanceNorm layers carry running-statistics buffers. The official code never
uses them because it never calls ``.eval()``, so they are dropped here. The architecture is inferred from tensor
shapes.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from stargan_core.checkpoint import safe_torch_load
from stargan_core.errors import CheckpointError, first_line
from stargan_core.models import Discriminator, Generator

UNUSED_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"official checkpoint not found: {path}")
    state = safe_torch_load(path, "cpu", "official checkpoint")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state dict of tensors as the official release saves them")
    return {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in UNUSED_BUFFERS}


def _key_problem(exc: RuntimeError) -> str:
    """Return the first missing, unexpected or mis-shaped key of a failed load_state_dict, in one line."""
    text = str(exc)
    for marker in ("Missing key(s)", "Unexpected key(s)", "size mismatch"):
        at = text.find(marker)
        if at >= 0:
            return text[at:].splitlines()[0].strip()[:160]
    return first_line(exc)


def _generator_from_state(state: dict[str, torch.Tensor], path: str | Path) -> Generator:
    if "main.0.weight" not in state:
        raise CheckpointError(f"{path} has no key main.0.weight; is it a generator (-G.ckpt) file?")
    first = state["main.0.weight"]
    conv_dim, c_dim = first.shape[0], first.shape[1] - 3
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"main\.(\d+)\.main\.0\.weight$", k))}
    G = Generator(conv_dim=conv_dim, c_dim=c_dim, repeat_num=len(blocks))
    try:
        G.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} does not match a StarGAN generator ({_key_problem(exc)}); is it a discriminator (-D.ckpt) file?"
        ) from exc
    return G


def _discriminator_from_state(state: dict[str, torch.Tensor], path: str | Path) -> Discriminator:
    if "conv2.weight" not in state or "main.0.weight" not in state:
        raise CheckpointError(f"{path} has no keys conv2.weight and main.0.weight; is it a discriminator (-D.ckpt) file?")
    convs = sorted(int(m.group(1)) for k in state if (m := re.match(r"main\.(\d+)\.weight$", k)))
    repeat_num = len(convs)
    kernel = state["conv2.weight"].shape[2]
    D = Discriminator(
        image_size=kernel * 2 ** repeat_num,
        conv_dim=state["main.0.weight"].shape[0],
        c_dim=state["conv2.weight"].shape[0],
        repeat_num=repeat_num,
    )
    try:
        D.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} does not match a StarGAN discriminator ({_key_problem(exc)}); is it a generator (-G.ckpt) file?"
        ) from exc
    return D


def load_official(
    generator_path: str | Path, discriminator_path: str | Path | None = None
) -> Generator | tuple[Generator, Discriminator]:
    """Return our Generator (and Discriminator when its path is given) with the official weights loaded."""
    G = _generator_from_state(_read_state_dict(generator_path), generator_path)
    if discriminator_path is None:
        return G
    D = _discriminator_from_state(_read_state_dict(discriminator_path), discriminator_path)
    return G, D


def official_step(path: str | Path) -> int:
    """Return the step encoded in an official file name such as 200000-G.ckpt, or 0."""
    match = re.match(r"^(\d+)-[GD]\.ckpt$", Path(path).name)
    return int(match.group(1)) if match else 0


def import_official(
    generator_path: str | Path,
    discriminator_path: str | Path | None,
    label_names: list[str],
    dataset: str = "CelebA",
    out_path: str | Path = "official.pt",
    image_size: int | None = None,
) -> Path:
    """Write official weights as a checkpoint of this project, with the label names given in model order.

    The image size comes from the discriminator when one is given, else from ``image_size`` (the released
    models use 128 or 256 pixels).
    """
    from stargan_core.checkpoint import atomic_torch_save, FORMAT, VERSION, model_spec
    from stargan_core.config import Config, DataConfig, ModelConfig, TrainConfig
    from stargan_core.labels import BINARY, CATEGORICAL, DatasetLabels, LabelSpace

    names = [n.strip() for n in label_names if n.strip()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CheckpointError(f"--labels names {', '.join(repeated)} more than once; give each label once, in model order")
    loaded = load_official(generator_path, discriminator_path)
    G, D = loaded if isinstance(loaded, tuple) else (loaded, None)
    if G.c_dim != len(names):
        raise CheckpointError(
            f"{generator_path} expects {G.c_dim} labels but --labels lists {len(names)} ({','.join(names)}); "
            f"give exactly {G.c_dim} names in the model's order"
        )
    if D is not None and D.c_dim != G.c_dim:
        raise CheckpointError(f"{discriminator_path} classifies {D.c_dim} labels but the generator reads {G.c_dim}")
    size = D.image_size if D is not None else (image_size or 128)
    if D is not None and image_size is not None and image_size != D.image_size:
        raise CheckpointError(f"--image-size {image_size} differs from the discriminator's {D.image_size} px")
    kind = BINARY if dataset == "CelebA" else CATEGORICAL
    space = LabelSpace((DatasetLabels(dataset, tuple(names), kind),))
    data = DataConfig(image_size=size, **({"selected_attrs": tuple(names)} if dataset == "CelebA" else
                                          {"expressions": tuple(names)}))
    model = ModelConfig(
        c_dim=len(data.selected_attrs), c2_dim=len(data.expressions), g_conv_dim=G.conv_dim,
        g_repeat_num=G.repeat_num,
        **({"d_conv_dim": D.conv_dim, "d_repeat_num": D.repeat_num} if D is not None else {}),
    )
    config = Config(data=data, model=model, train=TrainConfig(dataset=dataset))
    spec = model_spec(G, D)
    spec.setdefault("image_size", size)
    payload = {
        "format": FORMAT, "version": VERSION, "step": official_step(generator_path),
        "G": G.state_dict(), "D": D.state_dict() if D is not None else None, "opt_G": None, "opt_D": None,
        "rng": None, "labels": space.to_dict(), "model": spec, "config": config.to_dict(),
        "source": {"official_generator": str(generator_path), "official_discriminator": str(discriminator_path or "")},
    }
    out_path = Path(out_path)
    atomic_torch_save(payload, out_path)
    return out_path
