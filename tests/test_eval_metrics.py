"""Evaluation metrics and target labels, checked against arithmetic done by hand."""

import math

import numpy as np
import pytest
import torch

from eval.metrics import (
    attribute_accuracy,
    changed_rate,
    classification_error,
    confusion_matrix,
    flatten_metrics,
    per_class_error,
    percent,
    requested_success_rate,
    untouched_preservation_rate,
    validate_metrics,
)
from eval.targets import attribute_targets, change_groups, wrong_mask_label
from stargan_core.errors import DataError
from stargan_core.labels import BINARY, CATEGORICAL, DatasetLabels, LabelSpace

ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")


def test_seven_of_eight_right_is_12_5_percent():
    target = [0, 1, 2, 3, 4, 5, 6, 0]
    predicted = [0, 1, 2, 3, 4, 5, 6, 3]
    assert classification_error(predicted, target) == 0.125
    assert percent(classification_error(predicted, target)) == 12.5


def test_classification_error_all_wrong_and_all_right():
    assert classification_error([1, 1], [0, 0]) == 1.0
    assert classification_error(np.array([2, 2, 2]), np.array([2, 2, 2])) == 0.0


def test_classification_error_rejects_empty():
    with pytest.raises(DataError, match="no predictions"):
        classification_error([], [])


def test_classification_error_rejects_length_mismatch():
    with pytest.raises(DataError, match="3 predictions but 2 targets"):
        classification_error([0, 1, 2], [0, 1])


def test_per_class_error_by_target():
    names = ["angry", "happy", "sad"]
    target = [0, 0, 0, 0, 1, 1]
    predicted = [0, 0, 0, 1, 2, 1]
    errors = per_class_error(predicted, target, names)
    assert errors == {"angry": 0.25, "happy": 0.5}  # sad has no image, so no key


def test_confusion_matrix_counts():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.sum() == 6


def test_confusion_matrix_rejects_out_of_range_class():
    with pytest.raises(DataError, match=r"\[0, 3\)"):
        confusion_matrix([0, 3], [0, 1], 3)


def test_attribute_accuracy_per_column():
    predicted = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=bool)
    target = np.array([[1, 0], [0, 1], [0, 0], [0, 0]], dtype=bool)
    np.testing.assert_allclose(attribute_accuracy(predicted, target), [0.75, 0.75])


def test_requested_success_needs_every_requested_attribute():
    # Row 0: both requested right. Row 1: one requested wrong. Row 2: the wrong column is not requested.
    predicted = np.array([[1, 0, 1], [1, 1, 1], [0, 1, 0]], dtype=bool)
    target = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 0]], dtype=bool)
    requested = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0]], dtype=bool)
    assert requested_success_rate(predicted, target, requested) == pytest.approx(2 / 3)


def test_requested_success_rejects_row_without_request():
    ones = np.ones((2, 2), dtype=bool)
    requested = np.array([[1, 0], [0, 0]], dtype=bool)
    with pytest.raises(DataError, match="at least one attribute"):
        requested_success_rate(ones, ones, requested)


def test_untouched_preservation_counts_cells():
    translated = np.array([[1, 1, 0], [0, 0, 1]], dtype=bool)
    source = np.array([[1, 0, 0], [0, 1, 1]], dtype=bool)
    requested = np.array([[1, 0, 0], [0, 0, 1]], dtype=bool)
    # Untouched cells: (0,1) changed, (0,2) kept, (1,0) kept, (1,1) changed -> 2 of 4 kept.
    assert untouched_preservation_rate(translated, source, requested) == 0.5


def test_untouched_preservation_rejects_all_requested():
    cells = np.ones((2, 2), dtype=bool)
    with pytest.raises(DataError, match="no attribute is left untouched"):
        untouched_preservation_rate(cells, ~cells, cells)


def test_changed_rate():
    assert changed_rate([True, True, False, False], [False, True, False, True]) == 0.5
    with pytest.raises(DataError, match="no images"):
        changed_rate([], [])


def test_validate_metrics_accepts_nested_numbers():
    validate_metrics({"a": 1, "b": {"c": 2.5, "d": np.float32(0.1)}})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_validate_metrics_rejects_non_finite(value):
    with pytest.raises(DataError, match=r"metric rafd\.translated_error_pct is"):
        validate_metrics({"rafd": {"translated_error_pct": value}})


@pytest.mark.parametrize("value", [True, "2.1", None, [1.0]])
def test_validate_metrics_rejects_non_numbers(value):
    with pytest.raises(DataError, match="not a number"):
        validate_metrics({"x": value})


def test_validate_metrics_rejects_empty_group():
    with pytest.raises(DataError, match="metric group celeba.requested_pct is empty"):
        validate_metrics({"celeba": {"requested_pct": {}}})


def test_flatten_metrics_joins_keys():
    flat = flatten_metrics({"rafd": {"error_pct": 2, "per_target_error_pct": {"happy": 1.5}}, "n": 3})
    assert flat == {"rafd/error_pct": 2.0, "rafd/per_target_error_pct/happy": 1.5, "n": 3.0}


def test_change_groups_follow_available_attributes():
    all_groups = ["hair", "gender", "age", "hair_gender", "hair_age", "gender_age", "hair_gender_age"]
    assert change_groups(ATTRS, "Male", "Young") == all_groups
    assert change_groups(("Black_Hair", "Blond_Hair", "Male"), "Male", "Young") == ["hair", "gender", "hair_gender"]
    assert change_groups(("Black_Hair", "Male"), "Male", "Young") == ["gender"]  # one hair colour: no hair change


def test_hair_targets_one_per_new_colour():
    labels = np.array([[1, 0, 0, 1, 1],    # black hair: to blond and to brown
                       [0, 0, 0, 0, 0]],   # no hair colour: to each of the three
                      dtype=np.float32)
    targets = attribute_targets(labels, ATTRS, "hair", "Male", "Young")
    assert len(targets) == 5
    assert sorted(targets.rows.tolist()) == [0, 0, 1, 1, 1]
    np.testing.assert_array_equal(targets.labels[:, :3].sum(axis=1), np.ones(5))
    np.testing.assert_array_equal(targets.labels[:, 3:], labels[targets.rows][:, 3:])
    assert targets.requested[:, :3].all()
    assert not targets.requested[:, 3:].any()


def test_combined_targets_flip_gender_and_age():
    labels = np.array([[0, 1, 0, 1, 1]], dtype=np.float32)
    targets = attribute_targets(labels, ATTRS, "hair_gender_age", "Male", "Young")
    assert len(targets) == 2  # black and brown
    np.testing.assert_array_equal(targets.labels[:, 3:], np.zeros((2, 2)))
    assert targets.requested.all()
    gender = attribute_targets(labels, ATTRS, "gender", "Male", "Young")
    np.testing.assert_array_equal(gender.labels, [[0, 1, 0, 0, 1]])
    np.testing.assert_array_equal(gender.requested, [[False, False, False, True, False]])


def test_wrong_mask_swaps_mask_only():
    space = LabelSpace((DatasetLabels("CelebA", ATTRS, BINARY), DatasetLabels("RaFD", ("angry", "happy"), CATEGORICAL)))
    c = torch.tensor([[0.0, 1.0]])
    right = space.to_model_label(1, c)
    wrong = wrong_mask_label(space, 1, c)
    assert right.tolist() == [[0, 0, 0, 0, 0, 0, 1, 0, 1]]
    assert wrong.tolist() == [[0, 0, 0, 0, 0, 0, 1, 1, 0]]
