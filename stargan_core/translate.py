"""Translate photos with a trained or imported StarGAN generator (Choi et al., 2018).

A ``Target`` describes one target domain as edits of an input's original label, so the same request works for
inputs with different original labels. ``Translator`` prepares images the way the training data was prepared
(centre crop, resize), runs the generator in batches and returns tensors or PIL images. ``translate_files``
writes one PNG per input and target, a labelled grid per input (as in StarGAN Fig. 4 and Fig. 9) and
``summary.json``.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps
from tqdm import tqdm

from stargan_core.checkpoint import build_models, label_space, load_checkpoint
from stargan_core.datasets import LabeledImages, load_prepared, read_manifest
from stargan_core.errors import CheckpointError, ConfigError, DataError, first_line
from stargan_core.images import (
    IMAGE_SUFFIXES,
    center_crop_resize,
    is_image_file,
    load_rgb,
    save_png,
    tensor_to_uint8,
    to_rgb,
    uint8_to_tensor,
)
from stargan_core.labels import BINARY, CATEGORICAL, HAIR_COLORS, DatasetLabels, LabelSpace, hair_indices
from stargan_core.models import Generator
from stargan_core.tracking import write_json

log = logging.getLogger(__name__)

# Short side in pixels of the images each dataset's crop size refers to: aligned CelebA images are 178x218, and
# the RaFD faces that StarGAN trains on are 256x256 crops. The crop of an input photo keeps the same share of
# its short side, so a photo framed like the training images is cropped like them at any resolution.
REFERENCE_SHORT_SIDE = {"CelebA": 178, "RaFD": 256}
DEFAULT_CROP_SIZE = {"CelebA": 178, "RaFD": 256}
MODES = ("single", "combos", "expressions")
GRID_STEM = "grid"
GRID_PADDING = 2  # pixels between grid cells, as in the training sample grids
FLIP = "flip"


@dataclass(frozen=True)
class Target:
    """One target domain: the label of dataset ``dataset`` built from an input's original label.

    Binary labels start from the input's original label (when the input belongs to that dataset) and apply
    ``assign`` (label index, 0.0 or 1.0), then ``flip``. Setting or flipping a hair colour to 1 clears the other
    hair colours. Categorical labels start from zeros, so ``assign`` is the one-hot class.
    """

    name: str  # column label and file stem, e.g. "Blond_Hair+Male=0", which parse_target reads back
    dataset: int  # index into LabelSpace.datasets
    assign: tuple[tuple[int, float], ...] = ()
    flip: tuple[int, ...] = ()


# ---------------------------------------------------------------------------------------------------------------
# Target parsing


def _dataset_of_kind(space: LabelSpace, kind: str, option: str) -> int:
    for i, d in enumerate(space.datasets):
        if d.kind == kind:
            return i
    have = "; ".join(f"{d.name} {d.kind}: {','.join(d.names)}" for d in space.datasets)
    required = "binary attributes (CelebA)" if kind == BINARY else "categorical expressions (RaFD)"
    raise CheckpointError(f"{option} needs a checkpoint with {required}, but its labels are {have}")


def _unknown_name(name: str, space: LabelSpace, dataset: int, option: str) -> CheckpointError:
    names = space.datasets[dataset].names
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    for j, other in enumerate(space.datasets):
        if j != dataset and name in other.names:
            setter = "--attrs" if other.kind == BINARY else "--expressions"
            hint = f"{name} is a {other.name} label, which {setter} sets. "
    return CheckpointError(
        f"{option}: unknown {space.datasets[dataset].name} label {name!r}; {hint}valid names: {', '.join(names)}"
    )


def _split_names(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,+]", text) if part.strip()]


def parse_target(space: LabelSpace, text: str, option: str = "--attrs") -> Target:
    """Parse binary attribute edits such as ``Blond_Hair,Male=0`` or ``Black_Hair+Young=flip`` into a Target.

    ``Name`` and ``Name=1`` set an attribute, ``Name=0`` clears it, ``Name=flip`` inverts the input's value.
    Names are checked against the checkpoint's labels. At most one hair colour may be set or flipped.
    """
    i = _dataset_of_kind(space, BINARY, option)
    names = space.datasets[i].names
    items = _split_names(text)
    if not items:
        raise ConfigError(f"{option} is empty; list attributes such as Blond_Hair,Male=0")
    assign: list[tuple[int, float]] = []
    flip: list[int] = []
    parts: list[str] = []
    seen: set[str] = set()
    for item in items:
        name, has_value, value = (s.strip() for s in item.partition("="))
        if name not in names:
            raise _unknown_name(name, space, i, option)
        if name in seen:
            raise ConfigError(f"{option}: {name} is given twice in {text!r}; give each attribute once")
        seen.add(name)
        k = names.index(name)
        if not has_value or value == "1":
            assign.append((k, 1.0))
            parts.append(name)
        elif value == "0":
            assign.append((k, 0.0))
            parts.append(f"{name}=0")
        elif value == FLIP:
            flip.append(k)
            parts.append(f"{name}={FLIP}")
        else:
            raise ConfigError(f"{option}: invalid value {value!r} for {name}; use {name}, {name}=0 or {name}={FLIP}")
    hair = set(hair_indices(names))
    raised = [names[k] for k, v in assign if v == 1.0 and k in hair] + [names[k] for k in flip if k in hair]
    if len(raised) > 1:
        raise ConfigError(
            f"{option}: hair colours are one-of-N, but {text!r} sets {' and '.join(raised)}; set one hair colour"
        )
    return Target("+".join(parts), i, tuple(assign), tuple(flip))


def single_targets(space: LabelSpace) -> list[Target]:
    """Return every single-domain change of every dataset, in label order (the columns of StarGAN Fig. 4).

    A hair colour is set (clearing the others), any other binary attribute is flipped, and each categorical class
    is a target of its own. The labels equal those of ``LabelSpace.all_domain_targets``.
    """
    targets = []
    for i, d in enumerate(space.datasets):
        hair = hair_indices(d.names)
        for k, name in enumerate(d.names):
            if d.kind == CATEGORICAL or k in hair:
                targets.append(Target(name, i, assign=((k, 1.0),)))
            else:
                targets.append(Target(f"{name}={FLIP}", i, flip=(k,)))
    return targets


def combo_targets(space: LabelSpace, hair: Sequence[str] | None = None) -> list[Target]:
    """Return the attribute combinations of StarGAN (Choi et al., 2018), Fig. 4 and Tables 1-2.

    The columns are H, G, A, H+G, H+A, G+A and H+G+A, where H sets a hair colour (each of ``hair``, default: every
    hair colour of the checkpoint), G flips Male and A flips Young.
    """
    i = _dataset_of_kind(space, BINARY, "--mode combos")
    names = space.datasets[i].names
    missing = [n for n in ("Male", "Young") if n not in names]
    available_hair = [n for n in names if n in HAIR_COLORS]
    if missing or not available_hair:
        lacks = missing + ([] if available_hair else ["a hair colour (" + ", ".join(HAIR_COLORS) + ")"])
        raise CheckpointError(
            f"--mode combos needs the attributes Male, Young and at least one hair colour, but the checkpoint's "
            f"labels ({', '.join(names)}) lack {', '.join(lacks)}; use --mode single or --attrs"
        )
    chosen = list(hair) if hair else available_hair
    for name in chosen:
        if name not in names:
            raise _unknown_name(name, space, i, "--hair")
        if name not in available_hair:
            raise ConfigError(f"--hair: {name} is not a hair colour; choose from {', '.join(available_hair)}")
    male, young = f"Male={FLIP}", f"Young={FLIP}"
    h = chosen
    groups = [[(n,) for n in h], [(male,)], [(young,)], [(n, male) for n in h], [(n, young) for n in h],
              [(male, young)], [(n, male, young) for n in h]]
    return [parse_target(space, "+".join(parts), "--mode combos") for group in groups for parts in group]


def expression_targets(space: LabelSpace, names: Sequence[str] | None = None) -> list[Target]:
    """Return one target per requested class of the checkpoint's categorical dataset (all classes by default).

    For a joint model the target is the RaFD part of the label with mask vector [0, 1] (StarGAN Eq. 7), which is
    how a CelebA-style photo gets an expression.
    """
    option = "--expressions" if names else "--mode expressions"
    i = _dataset_of_kind(space, CATEGORICAL, option)
    classes = space.datasets[i].names
    chosen = list(names) if names else list(classes)
    targets = []
    for name in chosen:
        if name not in classes:
            raise _unknown_name(name, space, i, option)
        targets.append(Target(name, i, assign=((classes.index(name), 1.0),)))
    return targets


def build_targets(
    space: LabelSpace,
    attrs: Iterable[str] = (),
    modes: Iterable[str] = (),
    expressions: str | Sequence[str] | None = None,
    hair: str | Sequence[str] | None = None,
) -> list[Target]:
    """Return the targets of a request in the order attrs, modes, expressions, without duplicates.

    Raises ConfigError or CheckpointError naming the option when a name is not among the checkpoint's labels.
    """
    modes = list(modes)
    hair_names = _split_names(hair) if isinstance(hair, str) else list(hair or [])
    expression_names = _split_names(expressions) if isinstance(expressions, str) else list(expressions or [])
    if hair_names and "combos" not in modes:
        raise ConfigError("--hair applies to --mode combos only; add --mode combos or drop --hair")
    targets = [parse_target(space, text) for text in attrs]
    for mode in modes:
        if mode == "single":
            targets += single_targets(space)
        elif mode == "combos":
            targets += combo_targets(space, hair_names)
        elif mode == "expressions":
            targets += expression_targets(space)
        else:
            raise ConfigError(f"mode {mode!r} is invalid; use one of {', '.join(MODES)}")
    if expression_names:
        targets += expression_targets(space, expression_names)
    if not targets:
        raise ConfigError("no target given; use --attrs NAMES, --mode single|combos|expressions or --expressions NAMES")
    unique: dict[str, Target] = {}
    for target in targets:
        known = unique.setdefault(target.name, target)
        if known != target:
            raise ConfigError(f"two different targets are named {target.name!r}; request only one of them")
    return list(unique.values())


def parse_source_label(space: LabelSpace, source: int, text: str | None) -> torch.Tensor:
    """Return the original label of the inputs: the named binary attributes set to 1, all others 0.

    An input photo has no known label, so without ``text`` every attribute of its original label is 0.
    """
    d = space.datasets[source]
    c_org = torch.zeros(d.dim)
    if not text:
        return c_org
    if d.kind != BINARY:
        raise ConfigError(
            f"--source-attrs sets binary attributes, but the source dataset {d.name} has categorical labels "
            f"(targets for it do not depend on the original label); drop --source-attrs"
        )
    target = parse_target(space, text, "--source-attrs")
    if target.flip:
        raise ConfigError(f"--source-attrs: {FLIP} is not a value of an original label; use Name or Name=0")
    for k, value in target.assign:
        c_org[k] = value
    return c_org


def target_label(space: LabelSpace, target: Target, source: int, c_org: torch.Tensor) -> torch.Tensor:
    """Return the generator input (N, space.dim) that translates inputs with original labels ``c_org`` to ``target``.

    ``c_org`` is (N, dim) of the source dataset. A target in another dataset of a joint model starts from an all-zero
    label of that dataset, as ``LabelSpace.all_domain_targets`` does.
    """
    d = space.datasets[target.dataset]
    n = c_org.size(0)
    if d.kind == BINARY and target.dataset == source:
        c = c_org.clone().float()
    else:
        c = c_org.new_zeros(n, d.dim, dtype=torch.float32)
    hair = hair_indices(d.names) if d.kind == BINARY else []
    for k, value in target.assign:
        if value == 1.0 and k in hair:
            c[:, hair] = 0.0
        c[:, k] = value
    for k in target.flip:
        flipped = 1.0 - c[:, k]
        if k in hair:
            c[:, hair] = torch.where(flipped.unsqueeze(1) > 0.5, torch.zeros_like(c[:, hair]), c[:, hair])
        c[:, k] = flipped
    return space.to_model_label(target.dataset, c)


# ---------------------------------------------------------------------------------------------------------------
# Translator


def resolve_device(name: str) -> torch.device:
    """Return the torch device for ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, checking that it exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device {name!r} is invalid; use auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s) found")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available; use --device cpu or auto")
    return device


class Translator:
    """A generator with its label space, image size and training crop, ready to translate images."""

    def __init__(
        self,
        G: Generator,
        space: LabelSpace,
        image_size: int,
        crop_sizes: dict[str, int] | None = None,
        device: str | torch.device = "auto",
        source_dataset: str | None = None,
        checkpoint: str = "",
    ) -> None:
        if G.c_dim != space.dim:
            raise CheckpointError(
                f"{checkpoint or 'generator'}: the generator reads {G.c_dim} label values but the labels "
                f"{space.to_dict()} need {space.dim}; the checkpoint is inconsistent"
            )
        if image_size <= 0 or image_size % 4:
            raise CheckpointError(
                f"{checkpoint or 'generator'}: image size {image_size} px is not a positive multiple of 4"
            )
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.G = G.to(self.device).eval().requires_grad_(False)
        self.space = space
        self.image_size = image_size
        self.crop_sizes = {**DEFAULT_CROP_SIZE, **(crop_sizes or {})}
        self.checkpoint = checkpoint
        names = [d.name for d in space.datasets]
        if source_dataset is None:
            self.source = 0
        elif source_dataset in names:
            self.source = names.index(source_dataset)
        else:
            raise CheckpointError(
                f"source dataset {source_dataset!r} is not in the checkpoint's labels; use one of {', '.join(names)}"
            )

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "auto",
        image_size: int | None = None,
        source_dataset: str | None = None,
    ) -> Translator:
        """Load a checkpoint of `stargan train` or `stargan import-official` (a .pt file or a run folder).

        ``image_size``, when given, is the size the caller expects. A checkpoint trained at another size raises
        CheckpointError.
        """
        payload = load_checkpoint(path, map_location="cpu")
        where = payload["path"]
        spec, config = payload.get("model") or {}, payload.get("config") or {}
        data = config.get("data") or {}
        model_size, config_size = spec.get("image_size"), data.get("image_size")
        if model_size is None and config_size is None:
            raise CheckpointError(f"{where} stores no image size (model.image_size or config data.image_size)")
        if model_size is not None and config_size is not None and model_size != config_size:
            raise CheckpointError(
                f"{where}: the model was built for {model_size} px but its config sets data.image_size={config_size}; "
                f"the checkpoint is inconsistent, so export it again"
            )
        size = int(model_size if model_size is not None else config_size)
        if image_size is not None and image_size != size:
            raise CheckpointError(
                f"{where} was trained at {size} px but {image_size} px was requested; "
                f"use a checkpoint trained at {image_size} px or request {size} px"
            )
        try:
            G, _ = build_models(payload)
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{where}: cannot rebuild the generator: {first_line(exc)}") from exc
        crop_sizes = {
            "CelebA": int(data.get("celeba_crop_size", DEFAULT_CROP_SIZE["CelebA"])),
            "RaFD": int(data.get("rafd_crop_size", DEFAULT_CROP_SIZE["RaFD"])),
        }
        translator = cls(G, label_space(payload), size, crop_sizes, device, source_dataset, checkpoint=where)
        log.info("loaded %s: %d px, labels %s, on %s", where, size, translator.label_summary(), translator.device)
        return translator

    # -- labels --------------------------------------------------------------------------------------------------

    def label_summary(self) -> str:
        return "; ".join(f"{d.name}: {','.join(d.names)}" for d in self.space.datasets)

    @property
    def source_labels(self) -> DatasetLabels:
        """Label layout of the inputs' dataset: its crop applies and --source-attrs sets its labels."""
        return self.space.datasets[self.source]

    def check_labels(self, expected: DatasetLabels) -> None:
        """Raise CheckpointError unless the checkpoint has dataset ``expected.name`` with the same names in order."""
        for d in self.space.datasets:
            if d.name == expected.name:
                if d.names != expected.names or d.kind != expected.kind:
                    raise CheckpointError(
                        f"{self.checkpoint}: {d.name} labels are {','.join(d.names)} but {','.join(expected.names)} "
                        f"were expected; use a checkpoint trained with these labels"
                    )
                return
        raise CheckpointError(
            f"{self.checkpoint} has no {expected.name} labels (it has {self.label_summary()}); "
            f"use a checkpoint trained on {expected.name}"
        )

    def targets(
        self,
        attrs: Iterable[str] = (),
        modes: Iterable[str] = (),
        expressions: str | Sequence[str] | None = None,
        hair: str | Sequence[str] | None = None,
    ) -> list[Target]:
        """Return the checked targets of a request (see ``build_targets``)."""
        return build_targets(self.space, attrs, modes, expressions, hair)

    def source_label(self, text: str | None = None) -> torch.Tensor:
        """Return the original label (dim,) for ``--source-attrs`` text such as ``Black_Hair,Young``."""
        return parse_source_label(self.space, self.source, text)

    def _as_c_org(self, c_org: torch.Tensor | str | None, n: int) -> torch.Tensor:
        if c_org is None or isinstance(c_org, str):
            c_org = self.source_label(c_org)
        c_org = torch.as_tensor(c_org, dtype=torch.float32)
        dim = self.source_labels.dim
        if c_org.dim() == 1:
            c_org = c_org.unsqueeze(0).expand(n, -1)
        if c_org.shape != (n, dim):
            raise ConfigError(
                f"original labels have shape {tuple(c_org.shape)}; expected ({n}, {dim}) for "
                f"{self.source_labels.name} labels {','.join(self.source_labels.names)}"
            )
        return c_org

    def labels(self, target: Target | str, n: int, c_org: torch.Tensor | str | None = None) -> torch.Tensor:
        """Return the generator input (n, space.dim) on the device for ``target`` and original labels ``c_org``."""
        if isinstance(target, str):
            target = self._resolve_target(target)
        return target_label(self.space, target, self.source, self._as_c_org(c_org, n)).to(self.device)

    def _resolve_target(self, text: str) -> Target:
        """Parse a target given as text: a class of the categorical dataset, else binary attribute edits."""
        for i, d in enumerate(self.space.datasets):
            if d.kind == CATEGORICAL and text in d.names:
                return Target(text, i, assign=((d.names.index(text), 1.0),))
        return parse_target(self.space, text, "target")

    # -- images --------------------------------------------------------------------------------------------------

    @property
    def crop_share(self) -> float:
        """Side of the centred square crop as a share of a photo's short side, at most 1.

        The share is ``crop_size / reference_short_side`` for the source dataset, where crop_size is the checkpoint's
        data.celeba_crop_size or data.rafd_crop_size. A 178x218 CelebA image with crop size 178 gets the training
        crop exactly (rows 20 to 197).
        """
        name = self.source_labels.name
        reference = REFERENCE_SHORT_SIDE.get(name, 178)
        return min(1.0, self.crop_sizes.get(name, reference) / reference)

    def crop_side(self, width: int, height: int) -> int:
        """Return the side in pixels of the centred square crop for a width x height photo."""
        return max(1, int(round(min(width, height) * self.crop_share)))

    def prepare(self, image: Image.Image, crop: bool = True) -> np.ndarray:
        """Return a PIL image as uint8 (S, S, 3) after EXIF orientation, RGB conversion, training crop and resize.

        Without the crop the whole image is resized to a square, which distorts non-square images.
        """
        image = to_rgb(ImageOps.exif_transpose(image))
        if crop:
            image = center_crop_resize(image, self.crop_side(image.width, image.height), self.image_size)
        elif image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8)

    def _check_images(self, x_real: torch.Tensor) -> torch.Tensor:
        if x_real.dim() == 3:
            x_real = x_real.unsqueeze(0)
        s = self.image_size
        if x_real.dim() != 4 or x_real.size(1) != 3 or x_real.shape[2:] != (s, s):
            raise DataError(
                f"images have shape {tuple(x_real.shape)}; expected (N, 3, {s}, {s}) for this {s} px checkpoint, "
                f"so resize them to {s} px or pass PIL images"
            )
        if not x_real.is_floating_point():
            raise DataError(f"images have dtype {x_real.dtype}; expected floats in [-1, 1]")
        return x_real

    @torch.inference_mode()
    def translate_batch(self, x_real: torch.Tensor, c_trg: torch.Tensor) -> torch.Tensor:
        """Return G(x_real, c_trg) on the translator's device for images (N, 3, S, S) in [-1, 1].

        ``c_trg`` is the model label (N, space.dim), or (space.dim,) for every image. The output of the generator's
        tanh lies in [-1, 1]. Instance normalisation uses per-image statistics, so each output does not depend
        on the other images of the batch. On CPU the generator runs one image at a time, because oneDNN may
        choose another convolution algorithm for another batch size and move outputs by about 1e-6. That keeps
        every output bit-identical to translating the image alone, at no measured cost on CPU (a 128 px
        generator took 0.87 s for 8 single images against 0.95 s for one batch of 8 on 2 cores).
        NOTE: on CUDA the batch runs as one call, and cuDNN's choice of algorithm may still differ by batch size.
        """
        x_real = self._check_images(x_real).to(self.device, dtype=torch.float32)
        c_trg = torch.as_tensor(c_trg, dtype=torch.float32).to(self.device)
        if c_trg.dim() == 1:
            c_trg = c_trg.unsqueeze(0).expand(x_real.size(0), -1)
        if c_trg.shape != (x_real.size(0), self.space.dim):
            raise ConfigError(
                f"target labels have shape {tuple(c_trg.shape)}; expected ({x_real.size(0)}, {self.space.dim}) "
                f"for labels {self.label_summary()}"
            )
        if self.device.type == "cpu":
            return torch.cat([self.G(x_real[i:i + 1], c_trg[i:i + 1]) for i in range(x_real.size(0))])
        return self.G(x_real, c_trg)

    def translate(
        self,
        images: Sequence[Image.Image] | torch.Tensor,
        targets: Sequence[Target | str] | Target | str,
        c_org: torch.Tensor | str | None = None,
        crop: bool = True,
        batch_size: int = 16,
    ) -> torch.Tensor | list[list[Image.Image]] | list[Image.Image]:
        """Translate images into each target.

        ``images``: PIL images of any mode and size (prepared with ``prepare``), or a float tensor (N, 3, S, S) in
        [-1, 1]. ``targets``: Target objects or text such as ``"Blond_Hair,Male=0"`` or ``"happy"``. ``c_org``:
        the inputs' original labels, (N, dim) or (dim,) or ``--source-attrs`` text (default all zero).
        Returns a CPU tensor (N, T, 3, S, S) for a tensor input, and for PIL images a list per image of T RGB images.
        With a single target (not in a list) the target axis is dropped.
        """
        single = isinstance(targets, (str, Target))
        target_list = [targets] if single else list(targets)
        if not target_list:
            raise ConfigError("no target given; pass at least one Target or attribute text")
        resolved = [t if isinstance(t, Target) else self._resolve_target(t) for t in target_list]
        if batch_size <= 0:
            raise ConfigError(f"batch size must be positive, got {batch_size}")
        if isinstance(images, torch.Tensor):
            x_all = self._check_images(images)
            as_pil = False
        elif len(images) == 0:
            return []
        else:
            x_all = uint8_to_tensor(np.stack([self.prepare(image, crop) for image in images]))
            as_pil = True
        c_all = self._as_c_org(c_org, x_all.size(0))
        outputs = []
        for start in range(0, x_all.size(0), batch_size):
            x_real = x_all[start:start + batch_size]
            c_batch = c_all[start:start + batch_size]
            columns = [self.translate_batch(x_real, self.labels(t, x_real.size(0), c_batch)).cpu() for t in resolved]
            outputs.append(torch.stack(columns, dim=1))
        if outputs:
            x_fake = torch.cat(outputs)
        else:
            x_fake = x_all.new_zeros(0, len(resolved), 3, self.image_size, self.image_size)
        if not as_pil:
            return x_fake[:, 0] if single else x_fake
        pixels = tensor_to_uint8(x_fake)  # clamps to [-1, 1] before rounding
        result = [[Image.fromarray(pixels[n, t], mode="RGB") for t in range(len(resolved))] for n in range(len(pixels))]
        return [row[0] for row in result] if single else result


# ---------------------------------------------------------------------------------------------------------------
# Grids, output names and folders of files


def _wrap_label(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Split a column label into lines no wider than ``width`` pixels, preferring breaks before ``+``."""
    tokens = [t if i == 0 else "+" + t for i, t in enumerate(text.split("+"))]
    lines: list[str] = []
    current = ""
    for token in tokens:
        if not current or font.getlength(current + token) <= width:
            current += token
            continue
        lines.append(current)
        current = token
    lines.append(current)
    wrapped = []
    for line in lines:  # tokens wider than the column break anywhere
        piece = ""
        for char in line:
            if piece and font.getlength(piece + char) > width:
                wrapped.append(piece)
                piece = char
            else:
                piece += char
        wrapped.append(piece)
    return wrapped


def make_grid(x_real: torch.Tensor, x_fakes: Sequence[torch.Tensor], names: Sequence[str]) -> np.ndarray:
    """Return one grid row as uint8 (H, W, 3): the input, then one column per target with its name above it.

    Images are (3, S, S) in [-1, 1], and values outside that range are clamped before conversion to 8 bit.
    """
    columns = [tensor_to_uint8(x_real)] + [tensor_to_uint8(x) for x in x_fakes]
    labels = ["input"] + list(names)
    size = columns[0].shape[0]
    font = ImageFont.load_default()
    wrapped = [_wrap_label(label, font, size) for label in labels]
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (10, 2)
    line_height = ascent + descent
    header = max(len(lines) for lines in wrapped) * line_height + GRID_PADDING
    width = len(columns) * (size + GRID_PADDING) + GRID_PADDING
    height = header + size + 2 * GRID_PADDING
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, (pixels, lines) in enumerate(zip(columns, wrapped)):
        left = GRID_PADDING + j * (size + GRID_PADDING)
        for row, line in enumerate(lines):
            offset = max(0, (size - int(font.getlength(line))) // 2)
            draw.text((left + offset, GRID_PADDING + row * line_height), line, fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(pixels, mode="RGB"), (left, header + GRID_PADDING))
    return np.asarray(canvas, dtype=np.uint8)


def file_stem(name: str) -> str:
    """Return ``name`` with characters outside letters, digits and ``_ . + = -`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.+=-]", "_", name)


def output_keys(relative: Sequence[PurePosixPath]) -> list[str]:
    """Return one output folder name per input path, unique ignoring case, in the order given.

    The key is the path without its suffix, e.g. ``sub/photo``. Inputs whose keys collide (``photo.jpg`` and
    ``photo.png``) keep their suffix as ``photo_jpg`` and ``photo_png``. A key that still collides gets ``-2``,
    ``-3``, ... in the order given.
    """
    stems = [path.with_suffix("").as_posix() for path in relative]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    seen: set[str] = set()
    keys = []
    for path, stem in zip(relative, stems):
        key = stem if counts[stem] == 1 else f"{stem}_{path.suffix[1:]}"
        key = "/".join(file_stem(part) for part in key.split("/"))
        unique, n = key, 2
        while unique.casefold() in seen:
            unique, n = f"{key}-{n}", n + 1
        seen.add(unique.casefold())
        keys.append(unique)
    return keys


def collect_inputs(path: str | Path, exclude: str | Path | None = None) -> list[tuple[Path, str]]:
    """Return (image file, output key) pairs for a file or a folder searched recursively, in sorted order.

    Keys are relative paths as ``output_keys`` builds them. Files under ``exclude`` (the output folder) are skipped.
    """
    path = Path(path)
    if path.is_file():
        files, root = [path], path.parent
    elif path.is_dir():
        skip = Path(exclude).resolve() if exclude is not None else None
        files = []
        for file in path.rglob("*"):
            # Resolve the folder only, so that a linked image is judged by where its link lies.
            inside_out = skip is not None and (file.parent.resolve() / file.name).is_relative_to(skip)
            if is_image_file(file) and not inside_out:
                files.append(file)
        root = path
        if not files:
            raise DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) found in {path}; pass a folder of images")
    else:
        raise DataError(f"input not found: {path}; pass an image file or a folder of images")
    relative = sorted((PurePosixPath(p.relative_to(root).as_posix()), p) for p in files)
    keys = output_keys([rel for rel, _ in relative])
    return [(file, key) for (_, file), key in zip(relative, keys)]


def prepared_dataset(root: str | Path) -> str:
    """Return the dataset name (CelebA or RaFD) that a prepared folder's manifest.json records."""
    manifest = read_manifest(root)
    raw = str(manifest.get("dataset", ""))
    names = {"celeba": "CelebA", "rafd": "RaFD"}
    if raw.lower() not in names:
        raise DataError(
            f"{Path(root) / 'manifest.json'} names dataset {raw!r}, not celeba or rafd; "
            f"prepare the folder with `stargan prepare`"
        )
    return names[raw.lower()]


def load_prepared_split(translator: Translator, root: str | Path, split: str) -> LabeledImages:
    """Load a split of a prepared dataset with the labels of the translator's source dataset.

    Raises CheckpointError when the prepared images have another size than the checkpoint.
    """
    data = load_prepared(root, split, translator.source_labels)
    if data.image_size != translator.image_size:
        raise CheckpointError(
            f"{root} contains {data.image_size} px images but {translator.checkpoint} was trained at "
            f"{translator.image_size} px; prepare the data at {translator.image_size} px or use a matching checkpoint"
        )
    return data


class _OutputWriter:
    """Writer of per-target PNGs and grids under ``out_dir``, which collects the records for summary.json."""

    def __init__(self, translator: Translator, targets: Sequence[Target], out_dir: Path, grid: bool) -> None:
        self.translator, self.targets, self.out_dir, self.grid = translator, list(targets), out_dir, grid
        self.stems = [file_stem(t.name) for t in self.targets]
        self.records: list[dict[str, Any]] = []

    def write(self, x_real: torch.Tensor, c_org: torch.Tensor, keys: Sequence[str], inputs: Sequence[str]) -> None:
        """Translate a batch (x_real in [-1, 1] on the device, c_org (dim,) or (N, dim)) and save every output."""
        translator = self.translator
        x_fakes = [translator.translate_batch(x_real, translator.labels(t, len(keys), c_org)) for t in self.targets]
        for n, (key, source) in enumerate(zip(keys, inputs)):
            folder = self.out_dir / key
            record: dict[str, Any] = {"input": source, "key": key, "outputs": {}}
            if c_org.dim() == 2:
                record["source_label"] = [float(v) for v in c_org[n]]
            for target, stem, x_fake in zip(self.targets, self.stems, x_fakes):
                save_png(tensor_to_uint8(x_fake[n]), folder / f"{stem}.png")
                record["outputs"][target.name] = f"{key}/{stem}.png"
            if self.grid:
                image = make_grid(x_real[n], [x_fake[n] for x_fake in x_fakes], [t.name for t in self.targets])
                save_png(image, folder / f"{GRID_STEM}.png")
                record["grid"] = f"{key}/{GRID_STEM}.png"
            self.records.append(record)

    def summary(self, num_inputs: int, failures: list[dict[str, str]], **details: Any) -> dict[str, Any]:
        """Write ``OUT/summary.json`` and return it."""
        translator = self.translator
        summary = {
            "checkpoint": translator.checkpoint,
            "image_size": translator.image_size,
            "source_dataset": translator.source_labels.name,
            **details,
            "targets": [t.name for t in self.targets],
            "num_inputs": num_inputs,
            "num_translated": len(self.records),
            "num_failed": len(failures),
            "inputs": self.records,
            "failures": failures,
        }
        write_json(self.out_dir / "summary.json", summary)
        log.info("translated %d of %d image(s) into %s", len(self.records), num_inputs, self.out_dir)
        return summary


def _progress_bar(total: int, enabled: bool) -> tqdm:
    return tqdm(total=total, desc="translate", unit="img", dynamic_ncols=True, mininterval=1.0, disable=not enabled)


def translate_files(
    translator: Translator,
    inputs: Sequence[tuple[Path, str]],
    targets: Sequence[Target],
    out_dir: str | Path,
    c_org: torch.Tensor | None = None,
    crop: bool = True,
    grid: bool = True,
    batch_size: int = 16,
    progress: bool = True,
) -> dict[str, Any]:
    """Translate image files into every target and write ``OUT/<key>/<target>.png``, ``OUT/<key>/grid.png``.

    ``c_org`` (dim,) is the original label of every input (default all zero). A file that cannot be read is
    logged, listed under "failures" and skipped. Returns the summary that is also written to
    ``OUT/summary.json``. Output paths in it are relative to ``out_dir``.
    """
    c_org = translator.source_label() if c_org is None else c_org
    writer = _OutputWriter(translator, targets, Path(out_dir), grid)
    failures: list[dict[str, str]] = []
    log.info("translating %d image(s) into %d target(s) on %s", len(inputs), len(targets), translator.device)
    bar = _progress_bar(len(inputs), progress)
    try:
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start:start + batch_size]
            ready, pixels = [], []
            for file, key in chunk:
                try:
                    pixels.append(translator.prepare(load_rgb(file), crop))
                    ready.append((file, key))
                except DataError as exc:
                    log.warning("skipped %s", exc)  # the message starts with the path
                    failures.append({"input": str(file), "error": str(exc)})
            if ready:
                x_real = uint8_to_tensor(np.stack(pixels), translator.device)
                writer.write(x_real, c_org, [key for _, key in ready], [str(file) for file, _ in ready])
            bar.update(len(chunk))
    finally:
        bar.close()
    source_label = dict(zip(translator.source_labels.names, [float(v) for v in c_org]))
    crop_share = translator.crop_share if crop else None
    return writer.summary(len(inputs), failures, source_label=source_label, crop_share=crop_share)


def translate_prepared(
    translator: Translator,
    data: LabeledImages,
    targets: Sequence[Target],
    out_dir: str | Path,
    grid: bool = True,
    batch_size: int = 16,
    progress: bool = True,
    prepared: str = "",
    split: str = "",
) -> dict[str, Any]:
    """Translate prepared images, each from its real label, and write the outputs as ``translate_files`` does.

    The images are already cropped and resized, so they go to the generator unchanged. Output keys come from the
    ``file`` column of labels.csv (row numbers when it is absent).
    """
    names = data.files or tuple(f"{n:06d}" for n in range(len(data)))
    keys = output_keys([PurePosixPath(name) for name in names])
    writer = _OutputWriter(translator, targets, Path(out_dir), grid)
    log.info("translating %d prepared image(s) of %s %s into %d target(s) on %s", len(data), prepared or "memory",
             split, len(targets), translator.device)
    bar = _progress_bar(len(data), progress)
    try:
        for start in range(0, len(data), batch_size):
            stop = min(start + batch_size, len(data))
            x_real = uint8_to_tensor(np.array(data.images[start:stop]), translator.device)  # copy out of the memory map
            c_org = torch.from_numpy(np.asarray(data.labels[start:stop], dtype=np.float32))
            writer.write(x_real, c_org, keys[start:stop], list(names[start:stop]))
            bar.update(stop - start)
    finally:
        bar.close()
    return writer.summary(len(data), [], prepared=prepared, split=split)
