"""Evaluation of trained StarGAN models: numbers comparable with StarGAN (Choi et al., 2018), Table 3, and between runs.

Sections, each computed only when its inputs are given (``sections`` in the result records which ones ran):

- ``params``: parameter counts of the configured model beside pairwise models (always).
- ``expression_classifier``: accuracy of the ResNet-18 expression classifier on the real RaFD test split.
- ``rafd``: classification error of RaFD test faces of ``eval.source_expression`` (neutral) translated into each
  other expression, overall and per target, and the error on real test images (Section 5.5).
- ``attribute_classifier``: per-attribute accuracy of the attribute classifier on the real CelebA test split.
- ``celeba``: share of translated CelebA test faces whose requested attributes are classified as requested, for
  hair colour, gender and age changes and their combinations, and share of untouched attributes that stayed.
- ``joint``: expression error of CelebA test faces translated by a joint model with the RaFD part of the label,
  with the right mask vector and with the wrong one (Section 5.6, Fig. 7).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from eval.classifier import (
    ATTRIBUTES,
    EXPRESSION,
    Classifier,
    labels_spec_for,
    load_classifier,
    predict_images,
    score_classifier,
)
from eval.metrics import (
    changed_rate,
    classification_error,
    confusion_matrix,
    per_class_error,
    percent,
    requested_success_rate,
    untouched_preservation_rate,
)
from eval.params import parameter_table
from eval.targets import attribute_targets, change_groups, wrong_mask_label
from stargan_core import checkpoint as ckpt
from stargan_core.config import Config
from stargan_core.datasets import LabeledImages, gather_batch, load_prepared
from stargan_core.errors import CheckpointError, ConfigError, DataError
from stargan_core.labels import LabelSpace
from stargan_core.models import Generator, count_parameters

log = logging.getLogger(__name__)

SECTIONS = ("params", "expression_classifier", "rafd", "attribute_classifier", "celeba", "joint")


@dataclass(frozen=True)
class EvaluationInputs:
    """Paths of the models and data to evaluate; None leaves the sections that need it out."""

    rafd_checkpoint: str | None = None  # StarGAN trained on RaFD (or jointly), for the rafd section
    celeba_checkpoint: str | None = None  # StarGAN trained on CelebA (or jointly), for the celeba section
    joint_checkpoint: str | None = None  # StarGAN trained on both with the mask vector, for the joint section
    expression_classifier: str | None = None
    attribute_classifier: str | None = None
    rafd_dir: str | None = None  # prepared RaFD folder
    celeba_dir: str | None = None  # prepared CelebA folder


def route_checkpoint(path: str, inputs: EvaluationInputs) -> EvaluationInputs:
    """Fill the checkpoint slots that the model at ``path`` serves and the given classifiers can score.

    A RaFD model serves the rafd section, a CelebA model the celeba section, and a joint model all three. Slots
    that are already set stay. rafd and joint need ``expression_classifier``, celeba needs ``attribute_classifier``;
    raises ConfigError when no slot can be filled.
    """
    space = ckpt.label_space(ckpt.load_checkpoint(path))
    names = [d.name for d in space.datasets]
    updates: dict[str, str] = {}
    if inputs.expression_classifier:
        if "RaFD" in names and inputs.rafd_checkpoint is None:
            updates["rafd_checkpoint"] = path
        if space.uses_mask and inputs.joint_checkpoint is None:
            updates["joint_checkpoint"] = path
    if inputs.attribute_classifier and "CelebA" in names and inputs.celeba_checkpoint is None:
        updates["celeba_checkpoint"] = path
    if not updates:
        needed = "--expression-classifier" if "RaFD" in names else "--attribute-classifier"
        raise ConfigError(f"{path} was trained on {names} but no classifier to score it was given; pass {needed}")
    return replace(inputs, **updates)


@dataclass
class EvaluationResult:
    """Numbers for metrics/eval.json and MLflow, and the arrays and names that the report and plots need."""

    metrics: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Model:
    G: Generator
    space: LabelSpace
    path: str
    image_size: int | None
    parameters: int  # G plus D as stored in the checkpoint (G alone when it contains no discriminator)


def _load_model(path: str, device: torch.device) -> _Model:
    payload = ckpt.load_checkpoint(path)
    G, _ = ckpt.build_models(payload)
    G.to(device).eval()
    # D has no buffers (no batch norm), so the element count of its state dict is its parameter count.
    d_parameters = sum(value.numel() for value in (payload.get("D") or {}).values())
    return _Model(G, ckpt.label_space(payload), payload["path"], payload["model"].get("image_size"),
                  count_parameters(G) + d_parameters)


def _dataset_index(model: _Model, name: str, section: str) -> int:
    names = [d.name for d in model.space.datasets]
    if name not in names:
        raise CheckpointError(f"{model.path} was trained on {names}, so it cannot serve the {section} section, "
                              f"which needs {name}; pass a model trained on {name} or Both")
    return model.space.index(name)


def _load_test(root: str, model: _Model, index: int, cap: int) -> LabeledImages:
    data = load_prepared(root, "test", model.space.datasets[index])
    if model.image_size is not None and data.image_size != model.image_size:
        raise DataError(
            f"{root} contains {data.image_size} px images but {model.path} was trained at {model.image_size} px; "
            f"prepare the data at {model.image_size} px"
        )
    if cap and len(data) > cap:
        data = LabeledImages(data.images[:cap], data.labels[:cap], data.labels_spec, data.files[:cap])
    return data


def _translated_batches(model: _Model, data: LabeledImages, rows: np.ndarray, labels: torch.Tensor,
                        batch_size: int, device: torch.device, desc: str) -> Iterator[torch.Tensor]:
    """Yield G(x, c) for the input images ``rows`` and model labels ``labels``, one batch at a time."""
    if rows.size == 0:
        raise DataError(f"no images to translate for {desc}; the test split has no matching input images")
    for start in tqdm(range(0, rows.size, batch_size), desc=desc, unit="batch", dynamic_ncols=True, leave=False):
        end = min(start + batch_size, rows.size)
        x, _ = gather_batch(data, rows[start:end], device)
        with torch.no_grad():
            fake = model.G(x, labels[start:end].to(device))
        if not torch.isfinite(fake).all():
            raise DataError(
                f"the generator of {model.path} produced NaN or infinite pixels; the run has likely diverged, "
                f"so evaluate an earlier checkpoint"
            )
        yield fake


def _class_map(classifier: Classifier, names: tuple[str, ...], model_path: str) -> np.ndarray:
    """Return, for each classifier output, the position of that name in ``names`` (the model's label order).

    Raises CheckpointError unless the classifier predicts exactly the expressions of the model.
    """
    if set(names) != set(classifier.names):
        raise CheckpointError(
            f"the {classifier.task} classifier {classifier.meta.get('path', '')} predicts {list(classifier.names)} "
            f"but {model_path} uses {list(names)}; train the classifier with the same data.expressions"
        )
    return np.array([names.index(name) for name in classifier.names], dtype=np.int64)


def _expression_targets(names: tuple[str, ...], targets: list[int], count: int) -> tuple[np.ndarray, torch.Tensor]:
    """Return (target class per translation, one-hot labels) for ``count`` inputs times each target class."""
    target = np.repeat(np.asarray(targets, dtype=np.int64), count)
    labels = torch.nn.functional.one_hot(torch.from_numpy(target), len(names)).float()
    return target, labels


def _classify_expressions(model: _Model, classifier: Classifier, data: LabeledImages, rows: np.ndarray,
                          labels: torch.Tensor, class_map: np.ndarray, cfg: Config, device: torch.device,
                          desc: str, attribute_classifier: Classifier | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Translate and classify; return expression predictions in model order and, if asked, attribute booleans."""
    expressions, attributes = [], []
    for fake in _translated_batches(model, data, rows, labels, cfg.eval.batch_size, device, desc):
        expressions.append(class_map[classifier.predict(fake).cpu().numpy()])
        if attribute_classifier is not None:
            attributes.append(attribute_classifier.predict(fake, cfg.eval.attribute_threshold).cpu().numpy())
    return np.concatenate(expressions), (np.concatenate(attributes) if attributes else np.empty((0, 0), bool))


def expression_classifier_section(classifier: Classifier, rafd_dir: str, cfg: Config,
                                  device: torch.device) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score the expression classifier on the real RaFD test split."""
    data = load_prepared(rafd_dir, "test", labels_spec_for(classifier))
    score = score_classifier(classifier, data, cfg.eval.batch_size, device)
    details = {
        "expression_classifier_names": list(classifier.names),
        "confusion_real": confusion_matrix(score.target, score.predicted, len(classifier.names)),
    }
    return score.metrics, details


def rafd_section(model: _Model, classifier: Classifier, rafd_dir: str, cfg: Config, device: torch.device,
                 real_accuracy_pct: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Compute the classification error of translations from the source expression into every other one."""
    i = _dataset_index(model, "RaFD", "rafd")
    names = model.space.datasets[i].names
    source = cfg.eval.source_expression
    if source not in names:
        raise ConfigError(
            f"eval.source_expression {source!r} is not one of the model's expressions {list(names)}; "
            f"set eval.source_expression to one of them"
        )
    data = _load_test(rafd_dir, model, i, 0)
    rows = np.flatnonzero(data.labels[:, names.index(source)] == 1)
    if cfg.eval.max_test_images:
        rows = rows[:cfg.eval.max_test_images]
    if rows.size == 0:
        raise DataError(f"the test split of {rafd_dir} contains no {source!r} images to translate; "
                        f"prepare RaFD with {source} faces in the test split or change eval.source_expression")
    targets = [k for k, name in enumerate(names) if name != source]
    target, onehot = _expression_targets(names, targets, rows.size)
    all_rows = np.tile(rows, len(targets))
    labels = model.space.to_model_label(i, onehot)
    class_map = _class_map(classifier, names, model.path)
    predicted, _ = _classify_expressions(model, classifier, data, all_rows, labels, class_map, cfg, device,
                                         "translate RaFD")
    per_target = per_class_error(predicted, target, names)
    metrics = {
        "translated_error_pct": percent(classification_error(predicted, target)),
        "real_error_pct": round(100.0 - real_accuracy_pct, 4),
        "source_images": int(rows.size),
        "translated_images": int(all_rows.size),
        "model_parameters": model.parameters,
        "per_target_error_pct": {name: percent(value) for name, value in per_target.items()},
    }
    details = {
        "expressions": list(names),
        "source_expression": source,
        "confusion_translated": confusion_matrix(target, predicted, len(names)),
    }
    return metrics, details


def attribute_classifier_section(classifier: Classifier, celeba_dir: str, cfg: Config,
                                 device: torch.device) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score the attribute classifier on the real CelebA test split."""
    data = load_prepared(celeba_dir, "test", labels_spec_for(classifier))
    score = score_classifier(classifier, data, cfg.eval.batch_size, device, cfg.eval.attribute_threshold)
    return score.metrics, {}


def _attribute_columns(classifier: Classifier, names: tuple[str, ...], model_path: str) -> list[int]:
    """Return the classifier output column of each name in ``names``."""
    missing = [name for name in names if name not in classifier.names]
    if missing:
        raise CheckpointError(
            f"the attribute classifier {classifier.meta.get('path', '')} has no output for {missing} that {model_path} "
            f"uses; train it with data.selected_attrs covering {list(names)}"
        )
    return [classifier.names.index(name) for name in names]


def celeba_section(model: _Model, classifier: Classifier, celeba_dir: str, cfg: Config,
                   device: torch.device) -> tuple[dict[str, Any], dict[str, Any]]:
    """Compute attribute-transfer success and preservation for each change group on the CelebA test split."""
    i = _dataset_index(model, "CelebA", "celeba")
    names = model.space.datasets[i].names
    columns = _attribute_columns(classifier, names, model.path)
    data = _load_test(celeba_dir, model, i, cfg.eval.max_test_images)
    threshold = cfg.eval.attribute_threshold
    groups = change_groups(names, cfg.eval.gender_attr, cfg.eval.age_attr)
    if not groups:
        raise ConfigError(
            f"{model.path} has attributes {list(names)}, which support no hair-colour, gender or age change; "
            f"set eval.gender_attr or eval.age_attr to one of them"
        )
    source_pred = predict_images(classifier, data, cfg.eval.batch_size, device, threshold)[:, columns]
    requested_pct, untouched_pct, counts = {}, {}, {}
    for group in groups:
        targets = attribute_targets(data.labels, names, group, cfg.eval.gender_attr, cfg.eval.age_attr)
        labels = model.space.to_model_label(i, torch.from_numpy(targets.labels))
        parts = [classifier.predict(fake, threshold).cpu().numpy()[:, columns] for fake in
                 _translated_batches(model, data, targets.rows, labels, cfg.eval.batch_size, device,
                                     f"translate CelebA {group}")]
        predicted = np.concatenate(parts)
        requested_pct[group] = percent(requested_success_rate(predicted, targets.labels > 0.5, targets.requested))
        if not targets.requested.all():  # a change of every attribute leaves none to keep, so it gets no key
            untouched_pct[group] = percent(
                untouched_preservation_rate(predicted, source_pred[targets.rows], targets.requested)
            )
        counts[group] = len(targets)
    metrics: dict[str, Any] = {
        "source_images": len(data),
        "model_parameters": model.parameters,
        "requested_pct": requested_pct,
        "translated_images": counts,
    }
    if untouched_pct:
        metrics["untouched_preserved_pct"] = untouched_pct
    return metrics, {"attributes": list(names), "groups": groups}


def joint_section(model: _Model, classifier: Classifier, attribute_classifier: Classifier | None, celeba_dir: str,
                  cfg: Config, device: torch.device) -> tuple[dict[str, Any], dict[str, Any]]:
    """Compute the expression error of CelebA faces translated with the RaFD label, right and wrong mask."""
    if not model.space.uses_mask:
        raise CheckpointError(f"{model.path} was not trained on Both datasets, so it has no mask vector; "
                              f"pass a model trained with train.dataset=Both as the joint checkpoint")
    i_celeba = _dataset_index(model, "CelebA", "joint")
    i_rafd = _dataset_index(model, "RaFD", "joint")
    names = model.space.datasets[i_rafd].names
    class_map = _class_map(classifier, names, model.path)
    data = _load_test(celeba_dir, model, i_celeba, cfg.eval.max_test_images)
    rows = np.arange(len(data))
    target, onehot = _expression_targets(names, list(range(len(names))), rows.size)
    all_rows = np.tile(rows, len(names))
    age = cfg.eval.age_attr
    judge = attribute_classifier if attribute_classifier is not None and age in attribute_classifier.names else None
    source_age = None
    if judge is not None:
        real = predict_images(judge, data, cfg.eval.batch_size, device, cfg.eval.attribute_threshold)
        source_age = real[:, judge.names.index(age)]
    metrics: dict[str, Any] = {"source_images": int(rows.size), "translated_images": int(all_rows.size),
                               "model_parameters": model.parameters}
    details: dict[str, Any] = {"joint_expressions": list(names)}
    for mask, labels in (("proper_mask", model.space.to_model_label(i_rafd, onehot)),
                         ("wrong_mask", wrong_mask_label(model.space, i_rafd, onehot))):
        predicted, attributes = _classify_expressions(model, classifier, data, all_rows, labels, class_map, cfg,
                                                      device, f"translate CelebA with {mask}", judge)
        metrics[f"{mask}_error_pct"] = percent(classification_error(predicted, target))
        metrics[f"{mask}_per_target_error_pct"] = {
            name: percent(value) for name, value in per_class_error(predicted, target, names).items()
        }
        if judge is not None and source_age is not None:
            # Share of translations whose predicted age attribute differs from the input's (Fig. 7: wrong mask ages).
            metrics[f"{mask}_age_changed_pct"] = percent(
                changed_rate(source_age[all_rows], attributes[:, judge.names.index(age)])
            )
    return metrics, details


def evaluate(cfg: Config, inputs: EvaluationInputs, device: torch.device | None = None) -> EvaluationResult:
    """Run every section whose inputs are given and return the metrics (numbers only) and report details."""
    from stargan_core.train import resolve_device

    device = device or resolve_device(cfg.train.device)
    rafd_dir = inputs.rafd_dir or cfg.data.rafd_dir
    celeba_dir = inputs.celeba_dir or cfg.data.celeba_dir
    _check_requirements(inputs)
    sections: dict[str, int] = {name: 0 for name in SECTIONS}
    metrics: dict[str, Any] = {"sections": sections, "params": parameter_table(cfg)}
    sections["params"] = 1
    details: dict[str, Any] = {"inputs": dict(vars(inputs))}
    if inputs.expression_classifier:
        details["inputs"]["rafd_dir"] = rafd_dir
    if inputs.attribute_classifier or inputs.joint_checkpoint:
        details["inputs"]["celeba_dir"] = celeba_dir

    expression = attribute = None
    if inputs.expression_classifier:
        expression = load_classifier(inputs.expression_classifier, device, EXPRESSION)
        log.info("scoring the expression classifier on the RaFD test split of %s", rafd_dir)
        metrics["expression_classifier"], found = expression_classifier_section(expression, rafd_dir, cfg, device)
        details.update(found)
        sections["expression_classifier"] = 1
    if inputs.attribute_classifier:
        attribute = load_classifier(inputs.attribute_classifier, device, ATTRIBUTES)
        log.info("scoring the attribute classifier on the CelebA test split of %s", celeba_dir)
        metrics["attribute_classifier"], _ = attribute_classifier_section(attribute, celeba_dir, cfg, device)
        sections["attribute_classifier"] = 1
    if inputs.rafd_checkpoint and expression is not None:
        log.info("rafd: translating %s faces with %s", cfg.eval.source_expression, inputs.rafd_checkpoint)
        real_accuracy = metrics["expression_classifier"]["test_accuracy_pct"]
        model = _load_model(inputs.rafd_checkpoint, device)
        metrics["rafd"], found = rafd_section(model, expression, rafd_dir, cfg, device, real_accuracy)
        details.update(found)
        sections["rafd"] = 1
    if inputs.celeba_checkpoint and attribute is not None:
        log.info("celeba: attribute changes with %s", inputs.celeba_checkpoint)
        model = _load_model(inputs.celeba_checkpoint, device)
        metrics["celeba"], found = celeba_section(model, attribute, celeba_dir, cfg, device)
        details.update(found)
        sections["celeba"] = 1
    if inputs.joint_checkpoint and expression is not None:
        log.info("joint: CelebA faces with RaFD labels, right and wrong mask, with %s", inputs.joint_checkpoint)
        model = _load_model(inputs.joint_checkpoint, device)
        metrics["joint"], found = joint_section(model, expression, attribute, celeba_dir, cfg, device)
        details.update(found)
        sections["joint"] = 1
    return EvaluationResult(metrics, details)


def _check_requirements(inputs: EvaluationInputs) -> None:
    """Raise ConfigError when a checkpoint is given without the classifier that scores it."""
    if (inputs.rafd_checkpoint or inputs.joint_checkpoint) and not inputs.expression_classifier:
        raise ConfigError(
            "a RaFD or joint StarGAN checkpoint needs an expression classifier to score it; pass "
            "--expression-classifier (train one with `stargan train-classifier --task expression`)"
        )
    if inputs.celeba_checkpoint and not inputs.attribute_classifier:
        raise ConfigError(
            "a CelebA StarGAN checkpoint needs an attribute classifier to score it; pass --attribute-classifier "
            "(train one with `stargan train-classifier --task attributes`)"
        )
