"""Parameter counts of one StarGAN model beside the pairwise models that the same domains would need.

Reference values are from StarGAN (Choi et al., 2018), Table 3 ("Classification errors [%] and the number of
parameters on the RaFD dataset"). It lists StarGAN 53.2M x 1, DIAT 52.6M x 7, CycleGAN 52.6M x 14 and IcGAN
67.8M x 1 for the 8 RaFD expressions, where neutral faces are translated into the 7 other expressions. The 53.2M
of StarGAN is generator plus discriminator (8.44M + 44.79M at 128 px with 8 labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stargan_core.config import Config
from stargan_core.labels import label_space_for
from stargan_core.models import Discriminator, Generator, count_parameters

TABLE3_SOURCE = "StarGAN (Choi et al., 2018), Table 3"
TABLE3_NUM_EXPRESSIONS = 8  # RaFD expressions in Table 3


@dataclass(frozen=True)
class Table3Row:
    """One method of StarGAN (Choi et al., 2018), Table 3."""

    method: str
    classification_error_pct: float  # on RaFD translations from neutral into the 7 other expressions
    parameters_per_model: float | None  # None for the real-images row
    models: int | None


TABLE3 = (
    Table3Row("DIAT", 4.10, 52.6e6, 7),
    Table3Row("CycleGAN", 5.99, 52.6e6, 14),
    Table3Row("IcGAN", 8.07, 67.8e6, 1),
    Table3Row("StarGAN", 2.12, 53.2e6, 1),
    Table3Row("Real images", 0.45, None, None),
)
TABLE3_CLASSIFIER_ACCURACY_PCT = 99.55  # ResNet-18 expression classifier on the RaFD test split, Section 5.5
DIAT_PARAMETERS = 52.6e6
CYCLEGAN_PARAMETERS = 52.6e6


def parameter_table(cfg: Config) -> dict[str, int | float]:
    """Count G and D of the configured model and the parameters of pairwise models for the same domains.

    The model has the sizes of ``model.*`` and ``data.image_size`` and the labels of ``eval.params_dataset``: the
    CelebA attributes, the RaFD expressions (the setting of Table 3), or both. ``num_domains`` k is the number of
    those labels. Keys:

    - ``generator``, ``discriminator``, ``total``: parameters of the one StarGAN model.
    - ``pairwise_models`` = k(k-1): one-directional models, one per ordered domain pair, to learn every
      translation; ``pairwise_total`` is that many models of this StarGAN's G+D size.
    - ``diat_models_fixed_source`` = k-1 and ``cyclegan_models_fixed_source`` = 2(k-1): models that Table 3
      counts for translating one source domain (neutral) into every other one, with its per-model sizes of
      52.6M; the ``*_total_fixed_source`` keys multiply them out (7 x 52.6M and 14 x 52.6M for k = 8).
    """
    space = label_space_for(cfg.eval.params_dataset, cfg.data.selected_attrs, cfg.data.expressions)
    m = cfg.model
    with torch.device("meta"):  # shapes only: no memory is allocated for the weights
        generator = count_parameters(Generator(m.g_conv_dim, space.dim, m.g_repeat_num))
        discriminator = count_parameters(
            Discriminator(cfg.data.image_size, m.d_conv_dim, space.cls_dim, m.d_repeat_num)
        )
    k = space.cls_dim
    total = generator + discriminator
    return {
        "num_domains": k,
        "generator": generator,
        "discriminator": discriminator,
        "total": total,
        "pairwise_models": k * (k - 1),
        "pairwise_total": k * (k - 1) * total,
        "diat_models_fixed_source": k - 1,
        "diat_total_fixed_source": (k - 1) * DIAT_PARAMETERS,
        "cyclegan_models_fixed_source": 2 * (k - 1),
        "cyclegan_total_fixed_source": 2 * (k - 1) * CYCLEGAN_PARAMETERS,
    }


def millions(count: float) -> str:
    """Format a parameter count like Table 3 of StarGAN (Choi et al., 2018): 53226560 -> '53.2M'."""
    return f"{count / 1e6:.1f}M"
