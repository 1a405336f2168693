"""Typed, frozen configuration loaded from params.yaml with dotted command-line overrides.

Every hyperparameter defaults to the value of StarGAN (Choi et al., CVPR 2018), Section 5 and Appendix 7.
Loading checks key names, value types and cross-field rules, and raises ``ConfigError`` with one line that names
the key and the fix before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stargan_core.errors import ConfigError, first_line

CELEBA_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
RAFD_EXPRESSIONS = (
    "angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised",
)
DATASETS = ("CelebA", "RaFD", "Both")


@dataclass(frozen=True)
class DataConfig:
    """Dataset locations, label selection and preparation settings."""

    celeba_image_dir: str = "data/raw/celeba/images"  # raw aligned CelebA JPEGs (img_align_celeba)
    celeba_attr_file: str = "data/raw/celeba/list_attr_celeba.txt"  # raw CelebA attribute file
    rafd_image_dir: str = "data/raw/rafd"  # raw RaFD photos: flat, or train/ and test/ with expression folders
    celeba_dir: str = "data/prepared/celeba"  # prepared CelebA: images.npy, labels.csv, manifest.json
    rafd_dir: str = "data/prepared/rafd"  # prepared RaFD, same layout
    selected_attrs: tuple[str, ...] = CELEBA_ATTRIBUTES  # CelebA attributes that define the domains
    expressions: tuple[str, ...] = RAFD_EXPRESSIONS  # RaFD expression names, in label order
    image_size: int = 128  # pixels, square
    celeba_crop_size: int = 178  # centre crop of the 178x218 aligned CelebA images, in pixels
    rafd_crop_size: int = 256  # face-centred crop of RaFD photos before resizing, in pixels
    test_size: int = 2000  # CelebA images held out for testing
    rafd_test_share: float = 0.1  # share of RaFD people held out for testing
    rafd_person_pattern: str = ""  # regex whose first group is the person id in a file name; empty: RaFD names
    split_seed: int = 1234  # seed of the train/test split, used by preparation only
    max_bad_share: float = 0.01  # preparation fails when more than this share of images is unreadable


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator sizes (StarGAN Appendix 7.2, Tables 4 and 5)."""

    c_dim: int = 5  # CelebA label length, equal to len(data.selected_attrs)
    c2_dim: int = 8  # RaFD label length, equal to len(data.expressions)
    g_conv_dim: int = 64  # channels of the first generator layer
    d_conv_dim: int = 64  # channels of the first discriminator layer
    g_repeat_num: int = 6  # residual blocks in the generator bottleneck
    d_repeat_num: int = 6  # stride-2 convolutions in the discriminator


@dataclass(frozen=True)
class LossConfig:
    """Loss weights of StarGAN Eq. 5, 6 and 8."""

    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation schedule (StarGAN Section 5.3) and run settings."""

    dataset: str = "CelebA"  # CelebA, RaFD, or Both (joint training with the mask vector)
    batch_size: int = 16
    num_iters: int = 200000  # discriminator iterations in total
    num_iters_decay: int = 100000  # last iterations over which the learning rate falls linearly to 0
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    n_critic: int = 5  # discriminator updates per generator update
    beta1: float = 0.5
    beta2: float = 0.999
    flip_prob: float = 0.5  # probability of a horizontal flip of each training image
    seed: int = 0  # seed of batch order, flips, target labels and the gradient-penalty interpolation
    log_step: int = 10  # iterations between loss records
    sample_step: int = 1000  # iterations between sample grids
    model_save_step: int = 10000  # iterations between checkpoints
    keep_last: int = 3  # checkpoints kept on disk, newest first
    num_sample_images: int = 8  # fixed inputs in each sample grid
    device: str = "auto"  # auto (CUDA when present), cpu, cuda or cuda:N
    mixed_precision: str = "fp32"  # fp32, or bf16 (autocast, CUDA only)
    channels_last: bool = False  # channels-last memory format on CUDA


@dataclass(frozen=True)
class TrackingConfig:
    """Experiment tracking with MLflow; the tracking URI comes from MLFLOW_TRACKING_URI when it is set."""

    mlflow: bool = True
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "stargan"


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings: the ResNet-18 judge classifiers and the metrics of translated images."""

    classifier_epochs: int = 30  # passes over the RaFD train split when training the expression classifier
    attribute_classifier_epochs: int = 5  # passes over the CelebA train split when training the attribute classifier
    classifier_batch_size: int = 32  # images per classifier training batch
    classifier_lr: float = 1e-3  # Adam learning rate of classifier training
    classifier_weight_decay: float = 1e-4  # Adam L2 weight decay of classifier training
    classifier_image_size: int = 128  # pixels, square; classifier inputs are resized to this size
    classifier_flip_prob: float = 0.5  # probability of a horizontal flip of each classifier training image
    classifier_init: str = ""  # ResNet-18 state dict file to start from; empty means random initialisation
    batch_size: int = 32  # images per batch when translating and classifying during evaluation
    seed: int = 0  # seed of classifier initialisation, batch order and flips
    source_expression: str = "neutral"  # input expression of the RaFD classification-error protocol
    gender_attr: str = "Male"  # attribute flipped by the gender (G) change
    age_attr: str = "Young"  # attribute flipped by the age (A) change
    attribute_threshold: float = 0.5  # sigmoid probability above which the classifier calls an attribute present
    max_test_images: int = 0  # test images per dataset used for translation metrics; 0 means all
    params_dataset: str = "RaFD"  # labels of the model counted in the params section: CelebA, RaFD (Table 3) or Both

    def __post_init__(self) -> None:
        positive = {
            "eval.classifier_epochs": self.classifier_epochs,
            "eval.attribute_classifier_epochs": self.attribute_classifier_epochs,
            "eval.classifier_batch_size": self.classifier_batch_size,
            "eval.classifier_image_size": self.classifier_image_size,
            "eval.batch_size": self.batch_size,
            "eval.classifier_lr": self.classifier_lr,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{key} must be positive, got {value}")
        for key, value in (("eval.classifier_flip_prob", self.classifier_flip_prob),
                           ("eval.attribute_threshold", self.attribute_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{key} must be between 0 and 1, got {value}")
        if self.classifier_weight_decay < 0:
            raise ConfigError(f"eval.classifier_weight_decay must be 0 or more, got {self.classifier_weight_decay}")
        if self.max_test_images < 0:
            raise ConfigError(f"eval.max_test_images must be 0 (all) or more, got {self.max_test_images}")
        if not self.source_expression:
            raise ConfigError("eval.source_expression is empty; name the input expression, for example neutral")
        if self.params_dataset not in DATASETS:
            raise ConfigError(f"eval.params_dataset is {self.params_dataset!r}; use one of {', '.join(DATASETS)}")


@dataclass(frozen=True)
class Config:
    """All settings of one run, one section per concern."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Return plain nested dicts and lists, suitable for YAML, JSON and checkpoints."""
        return _to_plain(dataclasses.asdict(self))

    def flat(self) -> dict[str, Any]:
        """Return the settings as dotted keys, for example ``{"train.g_lr": 0.0001}``."""
        out: dict[str, Any] = {}
        for section, values in self.to_dict().items():
            for key, value in values.items():
                out[f"{section}.{key}"] = ",".join(value) if isinstance(value, list) else value
        return out


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Load params.yaml (or defaults when ``path`` is None), apply ``key=value`` overrides and validate."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if path.is_dir():
            raise ConfigError(f"--params {path} is a directory; pass the path of a params file such as params.yaml")
        if not path.is_file():
            raise ConfigError(f"params file not found: {path}; pass --params with the path of params.yaml")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path} is not UTF-8 text ({first_line(exc)}); save it as UTF-8 YAML") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {first_line(exc)}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must be a mapping of sections (data, model, train, ...), got {type(loaded).__name__}")
        raw = loaded
    for item in overrides:
        apply_override(raw, item)
    if overrides:
        source += " with --set overrides"
    return config_from_dict(raw, source=source)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set one dotted ``section.key=value`` override in ``raw``; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"invalid override {item!r}; write it as section.key=value, for example train.num_iters=20")
    key, _, text = item.partition("=")
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"invalid override key {key!r}; write it as section.key, for example train.num_iters")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid value in override {item!r}: {first_line(exc)}") from exc
    section = raw.setdefault(parts[0], {})
    if not isinstance(section, dict):
        raise ConfigError(f"cannot set {key}: section {parts[0]!r} in the params file is not a mapping")
    section[parts[1]] = value


def config_from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """Build and validate a Config from nested dicts (params.yaml contents or a checkpoint's copy)."""
    config = _build(Config, raw, prefix="", source=source)
    validate(config, source)
    return config


def _suggest(name: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else f"; valid keys: {', '.join(options)}"


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            raise ConfigError(f"{source}: unknown key {prefix}{key}{_suggest(str(key), names)}")
    values = {}
    for name in names:
        if name not in raw:
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, raw[name] if raw[name] is not None else {}, f"{prefix}{name}.", source)
        else:
            values[name] = _coerce(raw[name], hint, f"{prefix}{name}", source)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
    if hint is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            # YAML 1.1 reads 1e-4 (no dot) as a string; accept the number it spells.
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(f"{source}: {key} must be a finite number, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{source}: {key} must be a string, got {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{source}: {key} must be a list of names, got {value!r}")
        return tuple(value)
    raise ConfigError(f"{source}: {key} has an unsupported type {hint}")


def validate(config: Config, source: str = "config") -> None:
    """Check cross-field rules; raise ConfigError naming the key and the fix."""
    _validate_labels(config, source)
    _validate_sizes(config, source)
    _validate_training(config, source)


def _validate_labels(config: Config, source: str) -> None:
    d, m = config.data, config.model
    if m.c_dim != len(d.selected_attrs):
        raise ConfigError(
            f"{source}: model.c_dim is {m.c_dim} but data.selected_attrs lists {len(d.selected_attrs)} attributes; "
            f"set model.c_dim to {len(d.selected_attrs)} or change data.selected_attrs"
        )
    if m.c2_dim != len(d.expressions):
        raise ConfigError(
            f"{source}: model.c2_dim is {m.c2_dim} but data.expressions lists {len(d.expressions)} expressions; "
            f"set model.c2_dim to {len(d.expressions)} or change data.expressions"
        )
    for key, names in (("data.selected_attrs", d.selected_attrs), ("data.expressions", d.expressions)):
        if not names:
            raise ConfigError(f"{source}: {key} is empty; list at least one name")
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: {key} lists a name twice: {list(names)}")


def _validate_sizes(config: Config, source: str) -> None:
    d, m = config.data, config.model
    if d.image_size <= 0:
        raise ConfigError(f"{source}: data.image_size must be positive, got {d.image_size}")
    if d.image_size % (2 ** m.d_repeat_num):
        raise ConfigError(
            f"{source}: data.image_size {d.image_size} is not divisible by 2^model.d_repeat_num = {2 ** m.d_repeat_num}; "
            f"use a multiple of {2 ** m.d_repeat_num} or lower model.d_repeat_num"
        )
    if d.image_size % 4:
        raise ConfigError(f"{source}: data.image_size {d.image_size} must be divisible by 4 (two generator downsamplings)")
    if m.g_repeat_num < 0:
        raise ConfigError(f"{source}: model.g_repeat_num must be 0 or more, got {m.g_repeat_num}")


def _validate_training(config: Config, source: str) -> None:
    d, m, t = config.data, config.model, config.train
    if t.dataset not in DATASETS:
        raise ConfigError(f"{source}: train.dataset is {t.dataset!r}; use one of {', '.join(DATASETS)}")
    positive = {
        "model.g_conv_dim": m.g_conv_dim, "model.d_conv_dim": m.d_conv_dim, "model.d_repeat_num": m.d_repeat_num,
        "train.batch_size": t.batch_size, "train.num_iters": t.num_iters, "train.n_critic": t.n_critic,
        "train.log_step": t.log_step, "train.sample_step": t.sample_step, "train.model_save_step": t.model_save_step,
        "train.keep_last": t.keep_last, "data.test_size": d.test_size,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{source}: {key} must be positive, got {value}")
    if not 0 <= t.num_iters_decay <= t.num_iters:
        raise ConfigError(
            f"{source}: train.num_iters_decay {t.num_iters_decay} must be between 0 and train.num_iters {t.num_iters}"
        )
    for key, value in (("train.flip_prob", t.flip_prob), ("data.rafd_test_share", d.rafd_test_share),
                       ("data.max_bad_share", d.max_bad_share)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{source}: {key} must be between 0 and 1, got {value}")
    for key, value in (("train.g_lr", t.g_lr), ("train.d_lr", t.d_lr)):
        if value <= 0:
            raise ConfigError(f"{source}: {key} must be positive, got {value}")
    for key, value in (("train.beta1", t.beta1), ("train.beta2", t.beta2)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{source}: {key} must be in [0, 1), got {value}")
    if t.mixed_precision not in ("fp32", "bf16"):
        raise ConfigError(f"{source}: train.mixed_precision is {t.mixed_precision!r}; use fp32 or bf16")
    if not (t.device in ("auto", "cpu", "cuda") or t.device.startswith("cuda:")):
        raise ConfigError(f"{source}: train.device is {t.device!r}; use auto, cpu, cuda or cuda:N")
