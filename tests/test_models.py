"""Network sizes of StarGAN (Choi et al., 2018), Tables 4 and 5, and instance-norm behaviour."""

import pytest
import torch

from stargan_core.models import Discriminator, Generator, count_parameters


@pytest.mark.parametrize(
    ("g_c_dim", "d_c_dim", "g_params", "d_params"),
    [
        (5, 5, 8_430_528, 44_762_048),  # CelebA, 5 attributes
        (8, 8, 8_439_936, 44_786_624),  # RaFD, 8 expressions
        (3 + 5 + 8 + 2 - 3, 13, 8_461_888, 44_827_584),  # joint: G reads 5 + 8 + 2 label channels, D classifies 13
    ],
)
def test_parameter_counts_at_128px(g_c_dim, d_c_dim, g_params, d_params):
    assert count_parameters(Generator(64, g_c_dim, 6)) == g_params
    assert count_parameters(Discriminator(128, 64, d_c_dim, 6)) == d_params


def test_celeba_total_is_53_19_million():
    total = count_parameters(Generator(64, 5, 6)) + count_parameters(Discriminator(128, 64, 5, 6))
    assert round(total / 1e6, 2) == 53.19


def test_generator_input_channels_joint():
    G = Generator(conv_dim=8, c_dim=15, repeat_num=1)
    assert G.main[0].in_channels == 3 + 5 + 8 + 2


def test_output_shapes_small():
    G = Generator(conv_dim=8, c_dim=5, repeat_num=2)
    D = Discriminator(image_size=32, conv_dim=8, c_dim=5, repeat_num=3)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1]])
    y = G(x, c)
    assert y.shape == (2, 3, 32, 32)
    assert y.abs().max() <= 1.0
    out_src, out_cls = D(y)
    assert out_src.shape == (2, 1, 4, 4)
    assert out_cls.shape == (2, 5)


def test_translation_independent_of_eval_and_batch():
    torch.manual_seed(0)
    G = Generator(conv_dim=8, c_dim=5, repeat_num=2)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    c = torch.eye(5)[:4]
    train_mode = G(x, c)
    G.eval()
    eval_mode = G(x, c)
    alone = G(x[1:2], c[1:2])
    assert not any(name.endswith("running_mean") for name, _ in G.named_buffers())
    assert torch.allclose(train_mode, eval_mode, atol=1e-6)
    assert torch.allclose(alone, eval_mode[1:2], atol=1e-5)


def test_generator_rejects_wrong_label_length():
    G = Generator(conv_dim=8, c_dim=5, repeat_num=1)
    with pytest.raises(ValueError, match="c_dim 5"):
        G(torch.zeros(1, 3, 16, 16), torch.zeros(1, 4))


def test_discriminator_rejects_indivisible_size():
    with pytest.raises(ValueError, match="not divisible"):
        Discriminator(image_size=100, conv_dim=8, c_dim=5, repeat_num=6)
