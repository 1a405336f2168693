"""The eval section of params.yaml: defaults and invalid values."""

import pytest

from stargan_core.config import load_config
from stargan_core.errors import ConfigError


def test_params_yaml_eval_matches_defaults():
    assert load_config("params.yaml").eval == load_config(None).eval


@pytest.mark.parametrize("override, message", [
    ("eval.classifier_epochs=0", r"eval\.classifier_epochs must be positive, got 0"),
    ("eval.classifier_image_size=-8", r"eval\.classifier_image_size must be positive"),
    ("eval.batch_size=0", r"eval\.batch_size must be positive"),
    ("eval.classifier_lr=0", r"eval\.classifier_lr must be positive"),
    ("eval.classifier_flip_prob=1.5", r"eval\.classifier_flip_prob must be between 0 and 1"),
    ("eval.attribute_threshold=-0.1", r"eval\.attribute_threshold must be between 0 and 1"),
    ("eval.classifier_weight_decay=-1", r"eval\.classifier_weight_decay must be 0 or more"),
    ("eval.max_test_images=-1", r"eval\.max_test_images must be 0 \(all\) or more"),
    ("eval.source_expression=", r"eval\.source_expression is empty"),
    ("eval.params_dataset=rafd", r"eval\.params_dataset is 'rafd'; use one of CelebA, RaFD, Both"),
    ("eval.classifier_epoch=3", r"unknown key eval\.classifier_epoch; did you mean classifier_epochs"),
])
def test_invalid_eval_values_name_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])
