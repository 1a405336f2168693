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


TINY_OVERRIDES = [
    "model.g_conv_dim=8", "model.d_conv_dim=8", "model.g_repeat_num=2", "model.d_repeat_num=3",
    "data.image_size=32", "train.batch_size=4", "train.num_iters=10", "train.num_iters_decay=5",
    "train.n_critic=2", "train.log_step=1", "train.sample_step=5", "train.model_save_step=5",
    "train.num_sample_images=2", "tracking.mlflow=false",
]


def write_prepared(folder: Path, images, table) -> Path:
    """Write a prepared dataset folder (images.npy, labels.csv, manifest.json) from arrays, for tests."""
    import json

    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", images)
    table.to_csv(folder / "labels.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps({"counts": {"total": len(table)}}))
    return folder


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> dict[str, Path]:
    """Random 32 px CelebA-style and RaFD-style prepared datasets with train and test splits."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("prepared")
    n = 24
    split = ["train"] * 20 + ["test"] * 4
    celeba = pd.DataFrame({"file": [f"{i:06d}.jpg" for i in range(n)], "split": split})
    hair = rng.integers(0, 3, n)
    for k, name in enumerate(("Black_Hair", "Blond_Hair", "Brown_Hair")):
        celeba[name] = (hair == k).astype(int)
    celeba["Male"] = rng.integers(0, 2, n)
    celeba["Young"] = rng.integers(0, 2, n)
    expressions = ["angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"]
    rafd = pd.DataFrame({
        "file": [f"Rafd090_{i:02d}.jpg" for i in range(n)], "split": split,
        "expression": [expressions[i % 8] for i in range(n)], "person": [f"{i // 8:02d}" for i in range(n)],
    })
    return {
        "celeba": write_prepared(root / "celeba", rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), celeba),
        "rafd": write_prepared(root / "rafd", rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rafd),
    }
