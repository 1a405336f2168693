"""ResNet-18 judge classifier: determinism, checkpoints, initial weights, and learning on real expression faces."""

import numpy as np
import pandas as pd
import pytest
import torch

from components.cli import main
from eval.classifier import (
    ATTRIBUTES,
    EXPRESSION,
    build_resnet18,
    load_classifier,
    load_init_weights,
    predict_images,
    save_classifier,
    score_classifier,
    train_classifier,
)
from stargan_core.config import load_config
from stargan_core.datasets import LabeledImages, load_prepared
from stargan_core.errors import CheckpointError
from stargan_core.labels import BINARY, CATEGORICAL, DatasetLabels

SAMPLE_EXPRESSIONS = ("angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
CPU = torch.device("cpu")


def random_images(n: int, spec: DatasetLabels, seed: int = 0) -> LabeledImages:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    if spec.kind == CATEGORICAL:
        labels = np.eye(spec.dim, dtype=np.float32)[np.arange(n) % spec.dim]
    else:
        labels = rng.integers(0, 2, (n, spec.dim)).astype(np.float32)
    return LabeledImages(images, labels, spec)


def tiny_settings(*extra: str):
    return load_config(None, ["eval.classifier_image_size=32", "eval.classifier_batch_size=4", *extra]).eval


def test_training_repeats_exactly_with_seed():
    data = random_images(8, DatasetLabels("RaFD", ("angry", "happy"), CATEGORICAL))
    first = train_classifier(data, tiny_settings(), 1, CPU)
    second = train_classifier(data, tiny_settings(), 1, CPU)
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_checkpoint_round_trip_keeps_predictions(tmp_path):
    spec = DatasetLabels("CelebA", ("Black_Hair", "Male", "Young"), BINARY)
    data = random_images(8, spec)
    classifier = train_classifier(data, tiny_settings(), 1, CPU)
    path = save_classifier(classifier, tmp_path / "attributes.pt", {"test_accuracy_pct": 50.0})
    loaded = load_classifier(path, CPU, ATTRIBUTES)
    assert loaded.task == ATTRIBUTES
    assert loaded.names == spec.names
    assert loaded.image_size == 32
    assert loaded.meta["metrics"] == {"test_accuracy_pct": 50.0}
    np.testing.assert_array_equal(predict_images(loaded, data, 4, CPU), predict_images(classifier, data, 4, CPU))


def test_load_rejects_other_task(tmp_path):
    data = random_images(4, DatasetLabels("RaFD", ("angry", "happy"), CATEGORICAL))
    path = save_classifier(train_classifier(data, tiny_settings(), 1, CPU), tmp_path / "expression.pt", {})
    with pytest.raises(CheckpointError, match="--task attributes"):
        load_classifier(path, CPU, ATTRIBUTES)


def test_load_rejects_foreign_file(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"x": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not a classifier checkpoint"):
        load_classifier(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_classifier(tmp_path / "missing.pt")


def test_init_weights_replace_all_but_new_head(tmp_path):
    source = build_resnet18(1000)  # the shape of an ImageNet state dict
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model = build_resnet18(7)
    load_init_weights(model, path)
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)
    assert model.fc.weight.shape == (7, 512)


def test_init_weights_rejects_other_network(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="not a ResNet-18 state dict"):
        load_init_weights(build_resnet18(7), path)


def test_expression_scores_per_class():
    spec = DatasetLabels("RaFD", ("angry", "happy"), CATEGORICAL)
    classifier = train_classifier(random_images(6, spec), tiny_settings(), 1, CPU)
    score = score_classifier(classifier, random_images(6, spec, seed=1), 4, CPU)
    assert score.metrics["test_images"] == 6
    assert set(score.metrics["per_class_accuracy_pct"]) == {"angry", "happy"}
    expected = 100.0 * float(np.mean(score.predicted == score.target))
    assert score.metrics["test_accuracy_pct"] == pytest.approx(expected, abs=1e-4)


@pytest.fixture(scope="module")
def expression_prepared(expression_sample, tmp_path_factory):
    """The 105-image expression sample prepared at 64 px, split by performer (about 30% of people in test)."""
    out = tmp_path_factory.mktemp("expression") / "rafd"
    code = main(["prepare", "rafd", "--image-dir", str(expression_sample), "--out", str(out),
                 "--expressions", ",".join(SAMPLE_EXPRESSIONS), "--person-pattern", r"^(\d\d)",
                 "--image-size", "64", "--test-share", "0.3", "--workers", "1"])
    assert code == 0
    return out


@pytest.mark.slow
def test_classifier_beats_chance_on_expression_sample(expression_prepared):
    table = pd.read_csv(expression_prepared / "labels.csv", dtype={"person": str})
    people = table.groupby("split")["person"].apply(set)
    assert not people["train"] & people["test"], "a performer is in both splits"

    spec = DatasetLabels("RaFD", SAMPLE_EXPRESSIONS, CATEGORICAL)
    train = load_prepared(expression_prepared, "train", spec)
    test = load_prepared(expression_prepared, "test", spec)
    settings = load_config(None, ["eval.classifier_image_size=64", "eval.classifier_batch_size=16"]).eval
    classifier = train_classifier(train, settings, 8, CPU)
    assert classifier.task == EXPRESSION
    score = score_classifier(classifier, test, 32, CPU)
    chance = 100.0 / len(SAMPLE_EXPRESSIONS)
    assert score.metrics["test_images"] == len(test)
    assert score.metrics["test_accuracy_pct"] > chance, score.metrics
