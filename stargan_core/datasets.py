"""Prepared datasets and deterministic batches.

A prepared dataset folder contains ``images.npy`` (uint8, N x size x size x 3, RGB), ``labels.csv`` and
``manifest.json``. ``labels.csv`` has one row per image in the same order: ``file``, ``split``, then one 0/1
column per attribute for CelebA, or ``expression`` and ``person`` for RaFD. Training memory-maps the images and never decodes a JPEG; flips and
scaling to [-1, 1] happen on the training device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from stargan_core.errors import DataError
from stargan_core.images import uint8_to_tensor
from stargan_core.labels import BINARY, CATEGORICAL, DatasetLabels

SPLITS = ("train", "test")


@dataclass(frozen=True)
class LabeledImages:
    """Images with their labels: the interface between data preparation, training and evaluation."""

    images: np.ndarray  # uint8 (N, H, W, 3), RGB; usually a read-only memory map
    labels: np.ndarray  # float32 (N, c): 0/1 attributes, or one-hot expressions
    labels_spec: DatasetLabels
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[3] != 3 or self.images.dtype != np.uint8:
            raise DataError(f"images must be uint8 of shape (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (self.images.shape[0], self.labels_spec.dim):
            raise DataError(
                f"labels shape {self.labels.shape} does not match {self.images.shape[0]} images "
                f"and {self.labels_spec.dim} labels {list(self.labels_spec.names)}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])


def read_manifest(root: str | Path) -> dict:
    """Return the parsed manifest.json of a prepared dataset folder."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path} not found; prepare the dataset first with `stargan prepare`")
    return json.loads(path.read_text(encoding="utf-8"))


def load_prepared(root: str | Path, split: str, labels_spec: DatasetLabels) -> LabeledImages:
    """Load one split of a prepared dataset, memory-mapping its images.

    ``labels_spec`` gives the label names in model order. Every CelebA name must be a column, and every RaFD
    expression in the data must be one of the names.
    """
    root = Path(root)
    if split not in SPLITS:
        raise DataError(f"split {split!r} is invalid; use one of {', '.join(SPLITS)}")
    images_path, labels_path = root / "images.npy", root / "labels.csv"
    for path in (images_path, labels_path):
        if not path.is_file():
            raise DataError(f"{path} not found; prepare the dataset first with `stargan prepare`")
    table = pd.read_csv(labels_path, dtype={"file": str, "split": str})
    images = np.load(images_path, mmap_mode="r")
    if len(table) != images.shape[0]:
        raise DataError(f"{labels_path} has {len(table)} rows but {images_path} contains {images.shape[0]} images")
    if "split" not in table.columns:
        raise DataError(f"{labels_path} has no 'split' column; prepare the dataset again")
    rows = np.flatnonzero((table["split"] == split).to_numpy())
    if rows.size == 0:
        raise DataError(f"{labels_path} has no rows in split {split!r}")
    part = table.iloc[rows]
    labels = _labels_from_table(part, labels_spec, labels_path)
    # A contiguous run of rows stays a memory map; anything else is gathered once.
    if rows[-1] - rows[0] + 1 == rows.size:
        subset = images[rows[0]: rows[-1] + 1]
    else:
        subset = images[rows]
    return LabeledImages(subset, labels, labels_spec, tuple(part["file"].tolist()))


def _labels_from_table(table: pd.DataFrame, spec: DatasetLabels, source: Path) -> np.ndarray:
    if spec.kind == BINARY:
        missing = [name for name in spec.names if name not in table.columns]
        if missing:
            raise DataError(
                f"{source} has no column for {missing}; prepare the data with these attributes selected "
                f"or change data.selected_attrs"
            )
        values = table[list(spec.names)].to_numpy()
        if not np.isin(values, (0, 1)).all():
            raise DataError(f"{source}: attribute columns must hold 0 or 1")
        return values.astype(np.float32)
    if spec.kind == CATEGORICAL:
        if "expression" not in table.columns:
            raise DataError(f"{source} has no 'expression' column; prepare the data with `stargan prepare rafd`")
        names = table["expression"].astype(str).str.lower().tolist()
        index = {name: i for i, name in enumerate(spec.names)}
        unknown = sorted(set(names) - set(index))
        if unknown:
            raise DataError(
                f"{source} contains expressions {unknown} that are not in data.expressions {list(spec.names)}; "
                f"add them to data.expressions (and set model.c2_dim)"
            )
        labels = np.zeros((len(names), spec.dim), dtype=np.float32)
        labels[np.arange(len(names)), [index[n] for n in names]] = 1.0
        return labels
    raise DataError(f"label kind {spec.kind!r} is invalid")


class BatchSampler:
    """Deterministic batch indices: epoch e visits the images in a permutation seeded by (seed, e, stream).

    Batch k is a pure function of k, so a resumed run draws exactly the batches an uninterrupted run would.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, stream: int = 0) -> None:
        if num_items <= 0:
            raise DataError("cannot sample batches from an empty dataset")
        self.num_items, self.batch_size, self.seed, self.stream = num_items, batch_size, seed, stream
        self._cache: dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            rng = np.random.default_rng([self.seed, self.stream, epoch])
            self._cache[epoch] = rng.permutation(self.num_items)
        return self._cache[epoch]

    def indices(self, batch_index: int) -> np.ndarray:
        """Return the item indices of batch ``batch_index`` (0-based)."""
        positions = np.arange(batch_index * self.batch_size, (batch_index + 1) * self.batch_size)
        epochs, offsets = np.divmod(positions, self.num_items)
        return np.array([self._permutation(int(e))[o] for e, o in zip(epochs, offsets)], dtype=np.int64)


def gather_batch(
    data: LabeledImages,
    indices: np.ndarray,
    device: torch.device | str,
    flip_prob: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (x in [-1, 1] of shape (B, 3, H, W), labels (B, c)) on ``device``, flipping each image with p flip_prob."""
    order = np.argsort(indices, kind="stable")
    rows = np.empty_like(order)
    rows[order] = np.arange(order.size)
    # Reading a memory map in increasing index order is faster; the original order is then restored.
    images = np.asarray(data.images[indices[order]])[rows]
    x = uint8_to_tensor(images, device)
    c = torch.from_numpy(data.labels[indices]).to(device)
    if flip_prob > 0.0:
        flip = torch.rand(x.size(0), generator=generator) < flip_prob
        flip = flip.to(x.device)
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    return x, c
