"""Shared fixtures. Real sample data is read from STARGAN_TEST_DATA (default: ../shared/data beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = Path(os.environ.get("STARGAN_TEST_DATA", REPO.parent / "shared" / "data"))


def _sample(name: str) -> Path:
    path = TEST_DATA / name
    if not path.is_dir():
        pytest.skip(f"sample data {path} not found; set STARGAN_TEST_DATA to the folder holding {name}/")
    return path


@pytest.fixture(scope="session")
def celeba_sample() -> Path:
    """Folder with images/ and list_attr_celeba.txt (1,000 real CelebA images)."""
    return _sample("celeba-sample")


@pytest.fixture(scope="session")
def expression_sample() -> Path:
    """Folder with one sub-folder per expression (105 real images, 7 expressions, 256x256)."""
    return _sample("expression-sample")


@pytest.fixture(scope="session")
def rafd_sample() -> Path:
    """Folder with 8 raw RaFD photos (681x1024) in expression sub-folders."""
    return _sample("rafd-sample")


@pytest.fixture(scope="session")
def official_compat() -> Path:
    """Official-format checkpoint with outputs of the official StarGAN code (conv_dim 8, 32 px)."""
    path = Path(os.environ.get("STARGAN_TEST_REFERENCE", REPO.parent / "shared" / "reference")) / "official-compat"
    if not path.is_dir():
        pytest.skip(f"reference vectors {path} not found; set STARGAN_TEST_REFERENCE to the folder holding official-compat/")
    return path
