"""params.yaml loading: defaults, overrides, YAML 1.1 numbers and one-line errors."""

from pathlib import Path

import pytest

from stargan_core.config import Config, load_config
from stargan_core.errors import ConfigError

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def test_repository_params_are_the_stargan_defaults():
    cfg = load_config(REPO_PARAMS)
    assert cfg == Config()
    assert cfg.train.g_lr == 1e-4
    assert (cfg.train.batch_size, cfg.train.n_critic, cfg.train.beta1, cfg.train.beta2) == (16, 5, 0.5, 0.999)
    assert (cfg.loss.lambda_cls, cfg.loss.lambda_rec, cfg.loss.lambda_gp) == (1.0, 10.0, 10.0)


def test_yaml11_exponent_string_is_a_number(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  g_lr: 1e-4\n  d_lr: 2E-5\n")
    cfg = load_config(path)
    assert cfg.train.g_lr == pytest.approx(1e-4)
    assert cfg.train.d_lr == pytest.approx(2e-5)


def test_override_dotted_keys():
    cfg = load_config(REPO_PARAMS, ["train.num_iters=20", "train.num_iters_decay=10", "data.selected_attrs=[Male]",
                                    "model.c_dim=1", "train.mixed_precision=bf16"])
    assert cfg.train.num_iters == 20
    assert cfg.data.selected_attrs == ("Male",)
    assert cfg.train.mixed_precision == "bf16"


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.train.num_iters = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.num_iter=5"], r"unknown key train\.num_iter; did you mean num_iters"),
        (["trian.num_iters=5"], r"unknown key trian"),
        (["train.batch_size=abc"], r"train\.batch_size must be an integer, got 'abc'"),
        (["train.g_lr=fast"], r"train\.g_lr must be a number"),
        (["train.channels_last=1"], r"train\.channels_last must be true or false"),
        (["model.c_dim=4"], r"model\.c_dim is 4 but data\.selected_attrs lists 5 attributes; set model\.c_dim to 5"),
        (["model.c2_dim=7"], r"model\.c2_dim is 7 but data\.expressions lists 8"),
        (["data.image_size=100"], r"data\.image_size 100 is not divisible by 2\^model\.d_repeat_num = 64"),
        (["train.dataset=celeb"], r"train\.dataset is 'celeb'; use one of CelebA, RaFD, Both"),
        (["train.num_iters_decay=300000"], r"num_iters_decay 300000 must be between 0 and train\.num_iters"),
        (["train.flip_prob=1.5"], r"train\.flip_prob must be between 0 and 1"),
        (["train.num_iters"], r"invalid override 'train\.num_iters'; write it as section\.key=value"),
        (["train.mixed_precision=fp8"], r"use fp32 or bf16"),
        (["train.g_lr=nan"], r"train\.g_lr must be a finite number"),
        (["loss.lambda_gp=inf"], r"loss\.lambda_gp must be a finite number"),
        (["data.image_size=0"], r"data\.image_size must be positive, got 0"),
    ],
)
def test_invalid_values_name_key_and_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(REPO_PARAMS, overrides)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(binary)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(scalar)


def test_flat_keys_for_tracking():
    flat = Config().flat()
    assert flat["train.g_lr"] == 1e-4
    assert flat["data.selected_attrs"] == "Black_Hair,Blond_Hair,Brown_Hair,Male,Young"
