"""Domain labels: binary attributes, one-hot expressions and the mask vector of StarGAN (Choi et al., 2018), Eq. 7.

A *label* is a float vector with one entry per attribute (CelebA, several may be 1) or per expression (RaFD,
exactly one is 1). Training on several datasets at once uses the unified label ``[c_1, ..., c_n, m]``: each
dataset's part, with zeros for the unknown parts, followed by the mask vector ``m``, a one-hot of the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from stargan_core.errors import ConfigError

HAIR_COLORS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
BINARY = "binary"
CATEGORICAL = "categorical"


def hair_indices(names: tuple[str, ...] | list[str]) -> list[int]:
    """Return the positions of hair-colour attributes, which are mutually exclusive, in ``names``."""
    return [i for i, name in enumerate(names) if name in HAIR_COLORS]


def one_hot(indices: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return float one-hot rows for integer class indices."""
    return torch.nn.functional.one_hot(indices.long(), num_classes).float()


def permute_labels(c_org: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Return random target labels: a permutation of the batch's own labels (keeps the label distribution real)."""
    order = torch.randperm(c_org.size(0), generator=generator).to(c_org.device)
    return c_org[order]


@dataclass(frozen=True)
class DatasetLabels:
    """The label layout of one dataset: its name, label names and kind (binary or categorical)."""

    name: str
    names: tuple[str, ...]
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in (BINARY, CATEGORICAL):
            raise ConfigError(f"label kind {self.kind!r} of {self.name} is invalid; use {BINARY} or {CATEGORICAL}")

    @property
    def dim(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class LabelSpace:
    """The labels that a model reads: one dataset, or several joined by the mask vector (Eq. 7)."""

    datasets: tuple[DatasetLabels, ...]

    @property
    def uses_mask(self) -> bool:
        return len(self.datasets) > 1

    @property
    def cls_dim(self) -> int:
        """Length of the discriminator's classification output: every dataset's labels."""
        return sum(d.dim for d in self.datasets)

    @property
    def dim(self) -> int:
        """Length of the generator's label input: every dataset's labels plus the mask vector when joint."""
        return self.cls_dim + (len(self.datasets) if self.uses_mask else 0)

    def index(self, dataset: str) -> int:
        for i, d in enumerate(self.datasets):
            if d.name == dataset:
                return i
        raise ConfigError(f"dataset {dataset!r} is not in this model's labels {[d.name for d in self.datasets]}")

    def cls_slice(self, i: int) -> slice:
        """Return the part of the classification output (and of the unified label) that belongs to dataset i."""
        start = sum(d.dim for d in self.datasets[:i])
        return slice(start, start + self.datasets[i].dim)

    def to_model_label(self, i: int, c: torch.Tensor) -> torch.Tensor:
        """Return the generator input for dataset i's labels: c itself, or the unified label of Eq. 7."""
        if not self.uses_mask:
            return c
        batch = c.size(0)
        parts = []
        for j, d in enumerate(self.datasets):
            parts.append(c if j == i else c.new_zeros(batch, d.dim))
        mask = c.new_zeros(batch, len(self.datasets))
        mask[:, i] = 1.0
        return torch.cat(parts + [mask], dim=1)

    def single_domain_targets(self, i: int, c_org: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Return (column name, dataset-i label) pairs that change one domain at a time, as in StarGAN Fig. 4.

        Binary attributes: a hair colour is set (and the other hair colours cleared); any other attribute is
        flipped. Categorical labels: each class in turn.
        """
        d = self.datasets[i]
        targets = []
        if d.kind == CATEGORICAL:
            for k, name in enumerate(d.names):
                c = c_org.new_zeros(c_org.shape)
                c[:, k] = 1.0
                targets.append((name, c))
            return targets
        hair = hair_indices(d.names)
        for k, name in enumerate(d.names):
            c = c_org.clone()
            if k in hair:
                c[:, hair] = 0.0
                c[:, k] = 1.0
            else:
                c[:, k] = 1.0 - c[:, k]
            targets.append((name, c))
        return targets

    def all_domain_targets(self, i: int, c_org: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Return (column name, model label) pairs for every single domain of every dataset.

        For dataset i the targets start from c_org. For the other datasets of a joint model they start from an
        all-zero label of that dataset, and the mask vector selects it, so a CelebA face can get a RaFD expression.
        """
        out = []
        for j, d in enumerate(self.datasets):
            start = c_org if j == i else c_org.new_zeros(c_org.size(0), d.dim)
            for name, c in self.single_domain_targets(j, start):
                column = f"{d.name}:{name}" if self.uses_mask else name
                out.append((column, self.to_model_label(j, c)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"datasets": [{"name": d.name, "names": list(d.names), "kind": d.kind} for d in self.datasets]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LabelSpace:
        return cls(tuple(DatasetLabels(d["name"], tuple(d["names"]), d["kind"]) for d in raw["datasets"]))


def label_space_for(dataset: str, selected_attrs: tuple[str, ...], expressions: tuple[str, ...]) -> LabelSpace:
    """Return the label space of a training run on CelebA, RaFD or Both."""
    celeba = DatasetLabels("CelebA", tuple(selected_attrs), BINARY)
    rafd = DatasetLabels("RaFD", tuple(expressions), CATEGORICAL)
    if dataset == "CelebA":
        return LabelSpace((celeba,))
    if dataset == "RaFD":
        return LabelSpace((rafd,))
    if dataset == "Both":
        return LabelSpace((celeba, rafd))
    raise ConfigError(f"train.dataset is {dataset!r}; use CelebA, RaFD or Both")
