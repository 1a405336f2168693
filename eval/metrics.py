"""Pure metric functions of the evaluation: classification error, confusion matrix and attribute-transfer rates.

Every function takes plain arrays of predictions and targets, so each number can be checked by hand. Rates are
fractions in [0, 1]; ``metrics/eval.json`` stores them as percentages (keys ending in ``_pct``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from stargan_core.errors import DataError


def _as_1d(values: Sequence[int] | np.ndarray, description: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{description} must be one-dimensional, got shape {array.shape}")
    return array


def classification_error(predicted: Sequence[int] | np.ndarray, target: Sequence[int] | np.ndarray) -> float:
    """Return the share of wrong predictions, ``mean(predicted != target)``.

    This is the classification error of StarGAN (Choi et al., 2018), Section 5.5 and Table 3, as a fraction:
    7 right out of 8 gives 0.125. Raises DataError for empty or mismatched inputs.
    """
    predicted = _as_1d(predicted, "predicted classes")
    target = _as_1d(target, "target classes")
    if predicted.shape != target.shape:
        raise DataError(f"{predicted.size} predictions but {target.size} targets; both must have one entry per image")
    if predicted.size == 0:
        raise DataError("no predictions to score; the evaluated split contains no images")
    return float(np.mean(predicted != target))


def per_class_error(
    predicted: Sequence[int] | np.ndarray, target: Sequence[int] | np.ndarray, names: Sequence[str]
) -> dict[str, float]:
    """Return the classification error among the images of each target class that occurs in ``target``.

    Classes without any image are left out, so the keys are the class names present in ``target``, in the order
    of ``names``.
    """
    predicted = _as_1d(predicted, "predicted classes")
    target = _as_1d(target, "target classes")
    classification_error(predicted, target)  # validates shapes and emptiness
    out: dict[str, float] = {}
    for k, name in enumerate(names):
        chosen = target == k
        if chosen.any():
            out[name] = float(np.mean(predicted[chosen] != k))
    return out


def confusion_matrix(
    target: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray, num_classes: int
) -> np.ndarray:
    """Return counts ``M[t, p]`` of images with target class t that were classified as p (int64, square)."""
    target = _as_1d(target, "target classes").astype(np.int64)
    predicted = _as_1d(predicted, "predicted classes").astype(np.int64)
    if target.shape != predicted.shape:
        raise DataError(f"{predicted.size} predictions but {target.size} targets; both must have one entry per image")
    for kind, values in (("target", target), ("predicted", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise DataError(f"{kind} classes must lie in [0, {num_classes}), got {values.min()}..{values.max()}")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (target, predicted), 1)
    return matrix


def _as_bool_2d(values: np.ndarray, description: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2:
        raise DataError(f"{description} must be two-dimensional (images, attributes), got shape {array.shape}")
    return array.astype(bool)


def attribute_accuracy(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Return the accuracy of each attribute column, ``mean over images of (predicted == target)``."""
    predicted = _as_bool_2d(predicted, "predicted attributes")
    target = _as_bool_2d(target, "target attributes")
    if predicted.shape != target.shape:
        raise DataError(f"predicted attributes {predicted.shape} and targets {target.shape} differ in shape")
    if predicted.shape[0] == 0:
        raise DataError("no attribute predictions to score; the evaluated split contains no images")
    return np.mean(predicted == target, axis=0)


def requested_success_rate(predicted: np.ndarray, target: np.ndarray, requested: np.ndarray) -> float:
    """Return the share of translated images whose requested attributes are all classified as requested.

    Row i counts as a success when ``predicted[i, j] == target[i, j]`` for every j with ``requested[i, j]``.
    Rows without any requested attribute are invalid. This automatic score replaces the user study of
    StarGAN (Choi et al., 2018), Tables 1 and 2, which ranked methods by human votes and is not comparable.
    """
    predicted = _as_bool_2d(predicted, "predicted attributes")
    target = _as_bool_2d(target, "target attributes")
    requested = _as_bool_2d(requested, "requested-attribute mask")
    if not predicted.shape == target.shape == requested.shape:
        raise DataError(
            f"predicted {predicted.shape}, target {target.shape} and requested {requested.shape} must have one shape"
        )
    if predicted.shape[0] == 0:
        raise DataError("no translated images to score; the test split yields no attribute changes")
    if not requested.any(axis=1).all():
        raise DataError("every translated image must request at least one attribute change")
    correct = (predicted == target) | ~requested
    return float(np.mean(correct.all(axis=1)))


def untouched_preservation_rate(translated: np.ndarray, source: np.ndarray, requested: np.ndarray) -> float:
    """Return the share of untouched (image, attribute) pairs whose predicted value did not change.

    Compares the classifier's prediction on each translated image with its prediction on the real input image,
    over the attributes the translation did not request, so classifier mistakes on the input do not count as
    changes. Raises DataError when the translations leave no attribute untouched, because the share is undefined.
    """
    translated = _as_bool_2d(translated, "attributes of translated images")
    source = _as_bool_2d(source, "attributes of input images")
    requested = _as_bool_2d(requested, "requested-attribute mask")
    if not translated.shape == source.shape == requested.shape:
        raise DataError(
            f"translated {translated.shape}, source {source.shape} and requested {requested.shape} must have one shape"
        )
    if translated.shape[0] == 0:
        raise DataError("no translated images to score; the test split yields no attribute changes")
    untouched = ~requested
    if not untouched.any():
        raise DataError("the translations request every attribute, so no attribute is left untouched to compare")
    return float(np.mean((translated == source)[untouched]))


def changed_rate(before: Sequence[bool] | np.ndarray, after: Sequence[bool] | np.ndarray) -> float:
    """Return the share of images whose predicted binary attribute differs between ``before`` and ``after``."""
    before = _as_1d(before, "attribute before translation").astype(bool)
    after = _as_1d(after, "attribute after translation").astype(bool)
    if before.shape != after.shape:
        raise DataError(f"{before.size} values before but {after.size} after translation")
    if before.size == 0:
        raise DataError("no images to compare; the evaluated split contains no images")
    return float(np.mean(before != after))


def percent(fraction: float) -> float:
    """Return a fraction as a percentage rounded to 4 decimals, the unit of Table 3 of StarGAN (Choi et al., 2018)."""
    return round(100.0 * fraction, 4)


def validate_metrics(tree: Mapping[str, Any], prefix: str = "") -> None:
    """Raise DataError naming the first key whose value is not a finite number or a mapping of such values.

    Booleans and strings are rejected, so ``metrics/eval.json`` contains numbers only.
    """
    if not tree and prefix:
        raise DataError(f"metric group {prefix.rstrip('.')} is empty; an evaluated section produced no values")
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            validate_metrics(value, name + ".")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise DataError(f"metric {name} is {value!r}, not a number; metrics/eval.json must contain numbers only")
        if not math.isfinite(float(value)):
            raise DataError(
                f"metric {name} is {value}; the inputs produced a non-finite value, so no metrics file was written"
            )


def flatten_metrics(tree: Mapping[str, Any], separator: str = "/", prefix: str = "") -> dict[str, float]:
    """Return nested metrics as one level, e.g. ``{"rafd/translated_error_pct": 2.1}`` for MLflow."""
    flat: dict[str, float] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, separator, name + separator))
        else:
            flat[name] = float(value)
    return flat
