"""Target labels of the evaluation: attribute changes on CelebA and expression labels with a right or wrong mask.

The attribute changes follow the single and multiple transfers of StarGAN (Choi et al., 2018), Tables 1 and 2:
hair colour (H), gender (G) and age (A), alone and as H+G, H+A, G+A and H+G+A.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stargan_core.labels import LabelSpace, hair_indices

# Group key in metrics/eval.json -> the changes it combines, in the order of Tables 1 and 2.
CHANGE_GROUPS = {
    "hair": ("hair",),
    "gender": ("gender",),
    "age": ("age",),
    "hair_gender": ("hair", "gender"),
    "hair_age": ("hair", "age"),
    "gender_age": ("gender", "age"),
    "hair_gender_age": ("hair", "gender", "age"),
}


@dataclass(frozen=True)
class AttributeTargets:
    """Translations of one change group: input rows, target labels and the mask of requested attributes."""

    rows: np.ndarray  # int64 (M,), index of the input image of each translation
    labels: np.ndarray  # float32 (M, c), target attributes
    requested: np.ndarray  # bool (M, c), attributes that the change sets

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def available_changes(names: tuple[str, ...], gender_attr: str, age_attr: str) -> dict[str, list[int]]:
    """Return the attribute columns of each change that ``names`` supports: hair colours, gender, age.

    A hair-colour change needs at least two hair colours among ``names``; the gender and age changes need
    ``gender_attr`` and ``age_attr``.
    """
    changes: dict[str, list[int]] = {}
    hair = hair_indices(names)
    if len(hair) >= 2:
        changes["hair"] = hair
    if gender_attr in names:
        changes["gender"] = [names.index(gender_attr)]
    if age_attr in names:
        changes["age"] = [names.index(age_attr)]
    return changes


def change_groups(names: tuple[str, ...], gender_attr: str, age_attr: str) -> list[str]:
    """Return the keys of CHANGE_GROUPS whose every change ``names`` supports, in table order."""
    changes = available_changes(names, gender_attr, age_attr)
    return [group for group, parts in CHANGE_GROUPS.items() if all(part in changes for part in parts)]


def attribute_targets(
    labels: np.ndarray, names: tuple[str, ...], group: str, gender_attr: str, age_attr: str
) -> AttributeTargets:
    """Return the translations of one change group for input images with 0/1 attribute ``labels`` (N, c).

    Hair: each hair colour that the image does not have, with the other hair colours cleared, so an image gets one
    translation per such colour. Gender and age: the attribute flipped. Combined groups apply every part, so H+G
    gives one translation per new hair colour, each with the gender flipped.
    """
    changes = available_changes(names, gender_attr, age_attr)
    parts = CHANGE_GROUPS[group]
    labels = np.asarray(labels, dtype=np.float32)
    n, c = labels.shape
    rows = np.arange(n, dtype=np.int64)
    targets = labels.copy()
    requested = np.zeros((n, c), dtype=bool)
    if "hair" in parts:
        hair = changes["hair"]
        row_parts, target_parts = [], []
        for k in hair:
            chosen = np.flatnonzero(labels[:, k] == 0)
            target = labels[chosen].copy()
            target[:, hair] = 0.0
            target[:, k] = 1.0
            row_parts.append(chosen)
            target_parts.append(target)
        rows = np.concatenate(row_parts).astype(np.int64)
        targets = np.concatenate(target_parts).astype(np.float32)
        requested = np.zeros(targets.shape, dtype=bool)
        requested[:, hair] = True
    for part in ("gender", "age"):
        if part in parts:
            column = changes[part][0]
            targets[:, column] = 1.0 - targets[:, column]
            requested[:, column] = True
    return AttributeTargets(rows, targets, requested)


def wrong_mask_label(space: LabelSpace, dataset_index: int, c: torch.Tensor) -> torch.Tensor:
    """Return the unified label of ``c`` for dataset ``dataset_index`` with the mask vector pointing elsewhere.

    StarGAN (Choi et al., 2018), Section 5.6, Fig. 7: a RaFD expression label with the mask [1, 0] of CelebA. The
    model then reads the all-zero CelebA part as valid, which includes Young = 0, and changes the age.
    Needs a joint model with exactly two datasets.
    """
    if len(space.datasets) != 2:
        raise ValueError(f"a wrong mask needs a joint model of two datasets, got {len(space.datasets)}")
    label = space.to_model_label(dataset_index, c)
    mask = label[:, space.cls_dim:]
    mask.zero_()
    mask[:, 1 - dataset_index] = 1.0
    return label
