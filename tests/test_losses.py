"""Loss functions against values computed by hand (StarGAN, Choi et al., 2018, Eq. 2-8)."""

import math

import pytest
import torch

from stargan_core.losses import (
    classification_loss,
    d_adversarial_loss,
    g_adversarial_loss,
    gradient_penalty,
    reconstruction_loss,
)


def test_adversarial_terms():
    real = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    fake = torch.tensor([[-1.0, 0.0], [0.5, 0.5]])
    loss_real, loss_fake = d_adversarial_loss(real, fake)
    assert loss_real.item() == pytest.approx(-2.0)
    assert loss_fake.item() == pytest.approx(0.0)
    assert g_adversarial_loss(fake).item() == pytest.approx(0.0)


def test_gradient_penalty_linear_critic():
    # D(x) = sum(w * x) has input gradient w for every image: penalty = (||w||_2 - 1)^2.
    w = torch.zeros(1, 3, 2, 2)
    w[0, 0, 0, 0], w[0, 1, 1, 1] = 3.0, 4.0  # ||w|| = 5
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    x_real, x_fake = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    alpha = torch.rand(2, 1, 1, 1)
    assert gradient_penalty(critic, x_real, x_fake, alpha).item() == pytest.approx(16.0)


def test_gradient_penalty_quadratic_critic_uses_interpolation():
    # D(x) = 0.5 ||x||^2 has gradient x_hat, so the penalty is (||x_hat|| - 1)^2 with x_hat = a x_real + (1-a) x_fake.
    critic = lambda x: 0.5 * (x ** 2).flatten(1).sum(1)  # noqa: E731
    x_real = torch.full((1, 1, 1, 4), 1.0)  # norm 2
    x_fake = torch.zeros(1, 1, 1, 4)
    alpha = torch.full((1, 1, 1, 1), 0.25)  # x_hat norm 0.5
    assert gradient_penalty(critic, x_real, x_fake, alpha).item() == pytest.approx(0.25)


def test_gradient_penalty_backpropagates_into_critic():
    weight = torch.tensor(2.0, requires_grad=True)
    critic = lambda x: (weight * x).flatten(1).sum(1)  # noqa: E731
    x = torch.ones(1, 1, 1, 1)
    penalty = gradient_penalty(critic, x, x, torch.ones(1, 1, 1, 1))  # (|w| - 1)^2
    penalty.backward()
    assert weight.grad.item() == pytest.approx(2.0)  # d/dw (w - 1)^2 at w = 2


def test_binary_classification_sums_attributes_and_averages_batch():
    logits = torch.zeros(2, 3)  # sigmoid 0.5: each attribute costs ln 2
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert classification_loss(logits, target, "binary").item() == pytest.approx(3 * math.log(2))


def test_categorical_classification_one_hot_and_index():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    one_hot = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    expected = ((-2.0 + math.log(math.exp(2) + 2)) + math.log(3)) / 2
    assert classification_loss(logits, one_hot, "categorical").item() == pytest.approx(expected)
    assert classification_loss(logits, torch.tensor([0, 1]), "categorical").item() == pytest.approx(expected)


def test_classification_rejects_unknown_kind():
    with pytest.raises(ValueError, match="binary or categorical"):
        classification_loss(torch.zeros(1, 2), torch.zeros(1, 2), "ordinal")


def test_reconstruction_is_mean_absolute_error():
    x = torch.tensor([[0.0, 1.0], [-1.0, 0.5]])
    x_rec = torch.tensor([[0.5, 1.0], [1.0, 0.5]])
    assert reconstruction_loss(x, x_rec).item() == pytest.approx((0.5 + 0 + 2 + 0) / 4)
