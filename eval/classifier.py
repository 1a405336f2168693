"""ResNet-18 judge classifiers: facial expression (RaFD) and binary attributes (CelebA).

StarGAN (Choi et al., 2018), Section 5.5, scores translated faces with a ResNet-18 expression classifier trained on
the RaFD train split (99.55% test accuracy there). This module trains such a classifier with Adam and random
horizontal flips, from scratch or from a ResNet-18 state dict file that the user provides. Nothing is
downloaded. Inputs are images in [-1, 1], resized to ``eval.classifier_image_size``.

A classifier checkpoint is one ``torch.save`` file holding the state dict and plain metadata (task, class names,
input size, settings, test metrics). It is loaded with ``weights_only=True``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from eval.metrics import attribute_accuracy, classification_error, per_class_error, percent
from stargan_core.checkpoint import atomic_torch_save
from stargan_core.config import EvalConfig
from stargan_core.datasets import LabeledImages, gather_batch
from stargan_core.checkpoint import safe_torch_load
from stargan_core.errors import CheckpointError, DataError
from stargan_core.labels import BINARY, CATEGORICAL, DatasetLabels

log = logging.getLogger(__name__)

FORMAT = "stargan-classifier"
VERSION = 1
EXPRESSION = "expression"  # one class per image, softmax cross-entropy
ATTRIBUTES = "attributes"  # several binary attributes per image, sigmoid binary cross-entropy
TASKS = (EXPRESSION, ATTRIBUTES)


def task_of(spec: DatasetLabels) -> str:
    """Return the classifier task of a label layout: expression for categorical labels, attributes for binary."""
    return EXPRESSION if spec.kind == CATEGORICAL else ATTRIBUTES


def build_resnet18(num_classes: int) -> nn.Module:
    """Return a randomly initialised torchvision ResNet-18 with ``num_classes`` outputs (no weights are fetched)."""
    return torchvision.models.resnet18(weights=None, num_classes=num_classes)


def load_init_weights(model: nn.Module, path: str | Path) -> None:
    """Initialise ``model`` from a ResNet-18 state dict file, keeping the new output layer when sizes differ.

    Accepts a plain state dict (such as torchvision's ImageNet file, stored locally by the user) or a classifier
    checkpoint of this module. Raises CheckpointError when the file is missing or is not a ResNet-18.
    NOTE: ImageNet weights expect mean/std-normalised inputs, but this module feeds [-1, 1], so the first epochs
    of fine-tuning adapt to the shift.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"classifier weights file not found: {path}; fix eval.classifier_init or --init-weights")
    loaded = safe_torch_load(path, "cpu", "classifier weights file")
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} contains no state dict; save the weights with torch.save(model.state_dict(), path)"
        )
    own = model.state_dict()
    head = {key for key in ("fc.weight", "fc.bias") if key in state and state[key].shape != own[key].shape}
    loadable = {key: value for key, value in state.items() if key not in head}
    missing, unexpected = model.load_state_dict(loadable, strict=False)
    missing = [key for key in missing if key not in head]
    if missing or unexpected:
        raise CheckpointError(
            f"{path} is not a ResNet-18 state dict: {len(missing)} missing keys (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:2]})"
        )
    log.info("initialised the classifier from %s%s", path, " (new output layer)" if head else "")


def resize(x: torch.Tensor, image_size: int) -> torch.Tensor:
    """Resize a batch (B, 3, H, W) to a square ``image_size`` with antialiased bilinear filtering."""
    if x.shape[-2:] == (image_size, image_size):
        return x
    return F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)


@dataclass
class Classifier:
    """A trained judge classifier: the network and what its outputs mean."""

    model: nn.Module
    task: str
    names: tuple[str, ...]  # class names (expression) or attribute names, in output order
    image_size: int  # pixels of the square network input
    meta: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Return the raw outputs for images in [-1, 1] of shape (B, 3, H, W)."""
        self.model.eval()
        return self.model(resize(x.float(), self.image_size))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
        """Return class indices (B,) for expressions, or booleans (B, c) with sigmoid > threshold for attributes.

        Raises DataError when an output is NaN or infinite, which comes from non-finite inputs or weights.
        """
        out = self.logits(x)
        if not torch.isfinite(out).all():
            raise DataError(
                "the classifier produced NaN or infinite outputs; check that the translated images and the "
                "classifier checkpoint hold finite values"
            )
        if self.task == EXPRESSION:
            return out.argmax(dim=1)
        return torch.sigmoid(out) > threshold

    def to(self, device: torch.device | str) -> Classifier:
        self.model.to(device)
        return self


def _targets(task: str, labels: torch.Tensor) -> torch.Tensor:
    return labels.argmax(dim=1) if task == EXPRESSION else labels


def _loss(task: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if task == EXPRESSION:
        return F.cross_entropy(out, target)
    return F.binary_cross_entropy_with_logits(out, target)


def train_classifier(
    data: LabeledImages,
    settings: EvalConfig,
    epochs: int,
    device: torch.device,
    init_weights: str | Path | None = None,
) -> Classifier:
    """Train a ResNet-18 on ``data`` (a prepared train split) and return it in evaluation mode.

    The task follows the labels: expression classes (cross-entropy) or binary attributes (binary cross-entropy).
    Initial weights, batch order and flips derive from ``settings.seed``, so a run on the CPU repeats exactly.
    """
    if len(data) < 2:
        raise DataError(f"the classifier needs at least 2 training images, got {len(data)}")
    task = task_of(data.labels_spec)
    torch.manual_seed(settings.seed)
    model = build_resnet18(data.labels_spec.dim)
    if init_weights:
        load_init_weights(model, init_weights)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.classifier_lr,
                                 weight_decay=settings.classifier_weight_decay)
    batch_size = min(settings.classifier_batch_size, len(data))
    flips = torch.Generator().manual_seed(settings.seed)
    history: list[dict[str, float]] = []
    bar = tqdm(range(epochs), desc=f"train {task} classifier", unit="epoch", dynamic_ncols=True)
    for epoch in bar:
        order = np.random.default_rng([settings.seed, epoch]).permutation(len(data))
        model.train()
        total_loss, seen = 0.0, 0
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            if index.size < 2:  # batch norm cannot train on a single image
                continue
            x, labels = gather_batch(data, index, device, settings.classifier_flip_prob, flips)
            out = model(resize(x, settings.classifier_image_size))
            loss = _loss(task, out, _targets(task, labels))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * index.size
            seen += index.size
        mean_loss = total_loss / max(seen, 1)
        if not np.isfinite(mean_loss):
            raise DataError(
                f"classifier training diverged in epoch {epoch + 1} (loss {mean_loss}); lower eval.classifier_lr"
            )
        history.append({"epoch": epoch + 1, "loss": mean_loss})
        bar.set_postfix_str(f"loss={mean_loss:.4f}", refresh=False)
        log.debug("classifier epoch %d: loss %.4f", epoch + 1, mean_loss)
    bar.close()
    model.eval()
    meta = {
        "train_images": len(data),
        "epochs": epochs,
        "final_train_loss": history[-1]["loss"] if history else float("nan"),
        "settings": {
            "classifier_batch_size": settings.classifier_batch_size, "classifier_lr": settings.classifier_lr,
            "classifier_weight_decay": settings.classifier_weight_decay,
            "classifier_flip_prob": settings.classifier_flip_prob, "seed": settings.seed,
            "init_weights": str(init_weights or ""),
        },
    }
    return Classifier(model, task, data.labels_spec.names, settings.classifier_image_size, meta)


@torch.no_grad()
def predict_images(
    classifier: Classifier, data: LabeledImages, batch_size: int, device: torch.device, threshold: float = 0.5
) -> np.ndarray:
    """Return predictions for every image of ``data``: class indices (N,) or attribute booleans (N, c)."""
    if len(data) == 0:
        raise DataError("no images to classify; the evaluated split is empty")
    parts = []
    for start in range(0, len(data), batch_size):
        index = np.arange(start, min(start + batch_size, len(data)))
        x, _ = gather_batch(data, index, device)
        parts.append(classifier.predict(x, threshold).cpu().numpy())
    return np.concatenate(parts)


def label_targets(classifier: Classifier, data: LabeledImages) -> np.ndarray:
    """Return the ground truth of ``data`` in the classifier's output order: class indices or attribute booleans.

    Raises DataError when the data's labels are not the classifier's labels.
    """
    names = data.labels_spec.names
    if task_of(data.labels_spec) != classifier.task:
        raise DataError(f"the {classifier.task} classifier cannot score {data.labels_spec.kind} labels {list(names)}")
    if set(names) != set(classifier.names):
        raise DataError(
            f"the classifier was trained on {list(classifier.names)} but the data is labelled {list(names)}; "
            f"train the classifier with the same data.expressions or data.selected_attrs"
        )
    order = [names.index(name) for name in classifier.names]
    labels = data.labels[:, order]
    if classifier.task == EXPRESSION:
        return labels.argmax(axis=1)
    return labels > 0.5


def save_classifier(classifier: Classifier, path: str | Path, metrics: dict[str, Any]) -> Path:
    """Write the classifier and its test ``metrics`` to ``path`` atomically."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": "resnet18",
        "task": classifier.task,
        "names": list(classifier.names),
        "image_size": classifier.image_size,
        "state_dict": {key: value.detach().cpu() for key, value in classifier.model.state_dict().items()},
        "meta": classifier.meta,
        "metrics": metrics,
    }
    atomic_torch_save(payload, path)
    log.info("saved %s classifier to %s", classifier.task, path)
    return path


def load_classifier(path: str | Path, device: torch.device | str = "cpu", task: str | None = None) -> Classifier:
    """Load a classifier written by ``save_classifier``; ``task`` (when given) must match the stored task."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"classifier checkpoint not found: {path}; train one with `stargan train-classifier`")
    payload = safe_torch_load(path, "cpu", "classifier checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a classifier checkpoint; train one with `stargan train-classifier`")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has classifier format version {payload['version']}; upgrade stargan to read it")
    if task is not None and payload["task"] != task:
        raise CheckpointError(
            f"{path} is an {payload['task']} classifier but an {task} classifier is needed; "
            f"pass one trained with `stargan train-classifier --task {task}`"
        )
    model = build_resnet18(len(payload["names"]))
    model.load_state_dict(payload["state_dict"])
    meta = dict(payload.get("meta", {}), metrics=payload.get("metrics", {}), path=str(path))
    classifier = Classifier(model, payload["task"], tuple(payload["names"]), int(payload["image_size"]), meta)
    return classifier.to(device)


def labels_spec_for(classifier: Classifier) -> DatasetLabels:
    """Return the label layout to load test data for ``classifier`` with ``load_prepared``."""
    if classifier.task == EXPRESSION:
        return DatasetLabels("RaFD", classifier.names, CATEGORICAL)
    return DatasetLabels("CelebA", classifier.names, BINARY)


@dataclass(frozen=True)
class ClassifierScore:
    """Test-split metrics of a classifier, with the raw predictions for plots."""

    metrics: dict[str, Any]  # numbers only, as stored in the metrics files
    predicted: np.ndarray  # class indices (N,) or attribute booleans (N, c)
    target: np.ndarray  # same layout as predicted


def score_classifier(
    classifier: Classifier, data: LabeledImages, batch_size: int, device: torch.device, threshold: float = 0.5
) -> ClassifierScore:
    """Classify the real images of ``data`` and return accuracy in percent, overall and per class or attribute.

    Expression: ``test_accuracy_pct`` = 100 x share of images whose class is right, and the accuracy among the
    images of each class. Attributes: the accuracy of each attribute and ``test_accuracy_pct``, their mean.
    """
    target = label_targets(classifier, data)
    predicted = predict_images(classifier, data, batch_size, device, threshold)
    if classifier.task == EXPRESSION:
        error = classification_error(predicted, target)
        per_class = per_class_error(predicted, target, classifier.names)
        metrics: dict[str, Any] = {
            "test_accuracy_pct": percent(1.0 - error),
            "test_images": len(data),
            "per_class_accuracy_pct": {name: percent(1.0 - value) for name, value in per_class.items()},
        }
    else:
        accuracy = attribute_accuracy(predicted, target)
        metrics = {
            "test_accuracy_pct": percent(float(np.mean(accuracy))),
            "test_images": len(data),
            "per_attribute_accuracy_pct": {
                name: percent(float(value)) for name, value in zip(classifier.names, accuracy)
            },
        }
    return ClassifierScore(metrics, predicted, target)
