"""Generator and discriminator of StarGAN (Choi et al., 2018), Appendix 7.2, Tables 4 and 5.

Module names follow the official release (``main``, ``conv1``, ``conv2``) so that its state dicts load after the
unused InstanceNorm running-statistics buffers are dropped.
"""

from __future__ import annotations

import torch
from torch import nn


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    # Per-image statistics in training and inference alike: a translation must not depend on .eval() or on the
    # other images of the batch, so no running statistics are kept.
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    """Bottleneck block: conv 3x3, IN, ReLU, conv 3x3, IN, plus the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, bias=False),
            instance_norm(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, bias=False),
            instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """G(x, c): an image in [-1, 1] and a target label of length c_dim to a translated image (Table 4)."""

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> None:
        super().__init__()
        self.conv_dim, self.c_dim, self.repeat_num = conv_dim, c_dim, repeat_num
        layers: list[nn.Module] = [
            nn.Conv2d(3 + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False),
            instance_norm(conv_dim),
            nn.ReLU(inplace=True),
        ]
        channels = conv_dim
        for _ in range(2):  # down-sampling
            layers += [
                nn.Conv2d(channels, channels * 2, kernel_size=4, stride=2, padding=1, bias=False),
                instance_norm(channels * 2),
                nn.ReLU(inplace=True),
            ]
            channels *= 2
        layers += [ResidualBlock(channels) for _ in range(repeat_num)]
        for _ in range(2):  # up-sampling
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, kernel_size=4, stride=2, padding=1, bias=False),
                instance_norm(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.Conv2d(channels, 3, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if c.dim() != 2 or c.size(1) != self.c_dim or c.size(0) != x.size(0):
            raise ValueError(f"label shape {tuple(c.shape)} does not match batch {x.size(0)} and c_dim {self.c_dim}")
        # The label is replicated over the image plane and concatenated to the image channels.
        c = c.to(x.dtype).view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


class Discriminator(nn.Module):
    """D(x) -> (D_src patch map, D_cls logits): PatchGAN critic plus auxiliary domain classifier (Table 5)."""

    def __init__(self, image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> None:
        super().__init__()
        if image_size % (2 ** repeat_num):
            raise ValueError(f"image_size {image_size} is not divisible by 2^repeat_num = {2 ** repeat_num}")
        self.image_size, self.conv_dim, self.c_dim, self.repeat_num = image_size, conv_dim, c_dim, repeat_num
        layers: list[nn.Module] = [nn.Conv2d(3, conv_dim, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
        channels = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(channels, channels * 2, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            channels *= 2
        self.main = nn.Sequential(*layers)
        kernel_size = image_size // (2 ** repeat_num)
        self.conv1 = nn.Conv2d(channels, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, c_dim, kernel_size=kernel_size, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        out_src = self.conv1(h)
        out_cls = self.conv2(h)
        return out_src, out_cls.view(out_cls.size(0), out_cls.size(1))


def count_parameters(module: nn.Module) -> int:
    """Return the number of parameters (trainable and frozen) of a module."""
    return sum(p.numel() for p in module.parameters())
