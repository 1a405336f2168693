"""Loss functions of StarGAN (Choi et al., 2018), Eq. 2-8, as pure functions of tensors."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from stargan_core.labels import BINARY, CATEGORICAL


def d_adversarial_loss(out_src_real: torch.Tensor, out_src_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (loss_real, loss_fake) = (-E[D_src(x)], E[D_src(G(x, c))]), the critic terms of Eq. 8."""
    return -out_src_real.mean(), out_src_fake.mean()


def g_adversarial_loss(out_src_fake: torch.Tensor) -> torch.Tensor:
    """Return -E[D_src(G(x, c))], the generator's adversarial term of Eq. 8."""
    return -out_src_fake.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    x_real: torch.Tensor,
    x_fake: torch.Tensor,
    alpha: torch.Tensor,
) -> torch.Tensor:
    """Return E[(||grad_xhat D_src(xhat)||_2 - 1)^2] with xhat = alpha x_real + (1 - alpha) x_fake (Eq. 8).

    ``alpha`` contains one value in [0, 1] per image, shape (N, 1, 1, 1). The graph is kept so that the penalty can
    be back-propagated into the critic.
    """
    x_hat = (alpha * x_real.detach() + (1.0 - alpha) * x_fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(
        outputs=out, inputs=x_hat, grad_outputs=torch.ones_like(out), create_graph=True, retain_graph=True
    )
    norm = grad.flatten(1).float().norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()


def classification_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Return the domain classification loss of Eq. 2 and 3.

    Binary labels (CelebA): sigmoid cross entropy summed over attributes and averaged over the batch.
    Categorical labels (RaFD): softmax cross entropy; ``target`` may be one-hot rows or class indices.
    """
    logits = logits.float()
    if kind == BINARY:
        return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="sum") / logits.size(0)
    if kind == CATEGORICAL:
        index = target.argmax(dim=1) if target.dim() == 2 else target.long()
        return F.cross_entropy(logits, index)
    raise ValueError(f"label kind {kind!r} is invalid; use {BINARY} or {CATEGORICAL}")


def reconstruction_loss(x_real: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """Return the cycle-consistency loss of Eq. 4: mean |x - G(G(x, c), c')|."""
    return (x_real.float() - x_rec.float()).abs().mean()
