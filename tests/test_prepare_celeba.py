"""CelebA preparation on the real 1,000-image sample: counts, pixels, labels, split rules and reproducibility."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torchvision.transforms.functional as TF
from PIL import Image

from components.cli import main as cli_main
from stargan_core.config import CELEBA_ATTRIBUTES
from stargan_core.datasets import load_prepared
from stargan_core.errors import DataError
from stargan_core.labels import BINARY, DatasetLabels
from stargan_core.prepare import prepare_celeba
from stargan_core.prepare.celeba import choose_test_rows

REPO = Path(__file__).resolve().parents[1]
TEST_SIZE = 100


def _attribute_rows(attr_file: Path) -> tuple[list[str], dict[str, list[int]]]:
    """Read list_attr_celeba.txt the way the StarGAN release does: rstrip, then split on whitespace."""
    lines = [line.rstrip() for line in attr_file.open("r")]
    names = lines[1].split()
    rows = {}
    for line in lines[2:]:
        parts = line.split()
        rows[parts[0]] = [1 if value == "1" else 0 for value in parts[1:]]
    return names, rows


@pytest.fixture(scope="module")
def prepared(celeba_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("celeba") / "prepared"
    prepare_celeba(
        celeba_sample / "images", celeba_sample / "list_attr_celeba.txt", out,
        selected_attrs=CELEBA_ATTRIBUTES, test_size=TEST_SIZE, workers=2,
    )
    return out


def test_output_files_and_shapes(prepared: Path) -> None:
    assert sorted(path.name for path in prepared.iterdir()) == ["images.npy", "labels.csv", "manifest.json"]
    images = np.load(prepared / "images.npy", mmap_mode="r")
    assert images.dtype == np.uint8
    assert images.shape == (1000, 128, 128, 3)
    table = pd.read_csv(prepared / "labels.csv", dtype={"file": str})
    assert list(table.columns) == ["file", "split", *CELEBA_ATTRIBUTES]
    assert len(table) == 1000
    assert table["file"].is_unique


def test_manifest_counts(prepared: Path, celeba_sample: Path) -> None:
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["dataset"] == "celeba"
    assert manifest["label_names"] == list(CELEBA_ATTRIBUTES)
    assert manifest["counts"] == {"total": 1000, "train": 900, "test": 100}
    assert manifest["crop"]["crop_size"] == 178
    assert manifest["image_size"] == 128
    assert manifest["skipped"] == []
    assert len(manifest["inputs"]["sha256"]) == 64
    # Positive counts over both splits match the sample's documented totals.
    domains = manifest["domains"]
    totals = {name: domains["train"][name] + domains["test"][name] for name in CELEBA_ATTRIBUTES}
    assert totals == {"Black_Hair": 237, "Blond_Hair": 134, "Brown_Hair": 202, "Male": 441, "Young": 756}


def test_labels_match_attribute_file(prepared: Path, celeba_sample: Path) -> None:
    names, rows = _attribute_rows(celeba_sample / "list_attr_celeba.txt")
    columns = [names.index(name) for name in CELEBA_ATTRIBUTES]
    table = pd.read_csv(prepared / "labels.csv", dtype={"file": str})
    for record in table.itertuples(index=False):
        expected = [rows[record.file][k] for k in columns]
        assert list(record[2:]) == expected, record.file


def test_pixels_match_torchvision_crop(prepared: Path, celeba_sample: Path) -> None:
    images = np.load(prepared / "images.npy", mmap_mode="r")
    table = pd.read_csv(prepared / "labels.csv", dtype={"file": str})
    for row in (0, 1, 450, 899, 900, 999):  # first and last rows of both splits
        with Image.open(celeba_sample / "images" / table.file[row]) as raw:
            expected = TF.resize(TF.center_crop(raw.convert("RGB"), [178, 178]), [128, 128], antialias=True)
        np.testing.assert_array_equal(images[row], np.asarray(expected), err_msg=table.file[row])


def test_splits_contiguous_and_exact(prepared: Path) -> None:
    table = pd.read_csv(prepared / "labels.csv", dtype={"file": str})
    assert (table["split"] == "test").sum() == TEST_SIZE
    assert table["split"].tolist() == ["train"] * 900 + ["test"] * TEST_SIZE
    assert not set(table.file[table.split == "train"]) & set(table.file[table.split == "test"])


def test_test_set_follows_stargan_release_shuffle(prepared: Path, celeba_sample: Path) -> None:
    # The StarGAN release seeds Python's random with 1234, shuffles the attribute rows and tests on the first ones.
    lines = [line.rstrip() for line in (celeba_sample / "list_attr_celeba.txt").open("r")][2:]
    random.Random(1234).shuffle(lines)
    release_order = [line.split()[0] for line in lines]
    table = pd.read_csv(prepared / "labels.csv", dtype={"file": str})
    assert set(table.file[table.split == "test"]) == set(release_order[:TEST_SIZE])


def test_split_ignores_global_random_state() -> None:
    usable = np.ones(500, dtype=bool)
    first = choose_test_rows(usable, 50, seed=7)
    random.seed(99)
    np.random.seed(99)
    random.random()
    np.random.random()
    assert np.array_equal(choose_test_rows(usable, 50, seed=7), first)
    assert not np.array_equal(choose_test_rows(usable, 50, seed=8), first)


def test_load_prepared_reads_each_split(prepared: Path) -> None:
    spec = DatasetLabels("CelebA", CELEBA_ATTRIBUTES, BINARY)
    train = load_prepared(prepared, "train", spec)
    test = load_prepared(prepared, "test", spec)
    assert len(train) == 900
    assert len(test) == TEST_SIZE
    assert isinstance(train.images, np.memmap)  # one contiguous slice, not a gathered copy
    assert train.image_size == 128


def test_rerun_is_byte_identical(prepared: Path, celeba_sample: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    prepare_celeba(
        celeba_sample / "images", celeba_sample / "list_attr_celeba.txt", again,
        selected_attrs=CELEBA_ATTRIBUTES, test_size=TEST_SIZE, workers=1,
    )
    for name in ("images.npy", "labels.csv", "manifest.json"):
        assert (again / name).read_bytes() == (prepared / name).read_bytes(), name


def test_partition_file_test_rows(celeba_sample: Path, tmp_path: Path) -> None:
    files = sorted(path.name for path in (celeba_sample / "images").iterdir())
    partition = {name: 0 for name in files}
    for name in files[:40]:
        partition[name] = 2
    for name in files[40:70]:
        partition[name] = 1  # validation rows join train
    partition_file = tmp_path / "list_eval_partition.txt"
    partition_file.write_text("".join(f"{name} {value}\n" for name, value in partition.items()))
    out = tmp_path / "out"
    manifest = prepare_celeba(
        celeba_sample / "images", celeba_sample / "list_attr_celeba.txt", out,
        selected_attrs=("Male",), partition_file=partition_file, workers=2,
    )
    table = pd.read_csv(out / "labels.csv", dtype={"file": str})
    assert set(table.file[table.split == "test"]) == set(files[:40])
    assert manifest["counts"] == {"total": 1000, "train": 960, "test": 40}
    assert manifest["split"]["rule"] == "partition file"


def test_official_partition_without_test_rows_fails(celeba_sample: Path, tmp_path: Path) -> None:
    # Every sample image is in the official training partition (0).
    with pytest.raises(DataError, match="test partition"):
        prepare_celeba(
            celeba_sample / "images", celeba_sample / "list_attr_celeba.txt", tmp_path / "out",
            selected_attrs=CELEBA_ATTRIBUTES, partition_file=celeba_sample / "list_eval_partition.txt",
        )
    assert not (tmp_path / "out").exists()


def test_cli_prepare_celeba(celeba_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    argv = [
        "prepare", "celeba", "--params", str(REPO / "params.yaml"),
        "--set", f"data.celeba_image_dir={celeba_sample / 'images'}",  # the input paths default to params.yaml
        "--set", f"data.celeba_attr_file={celeba_sample / 'list_attr_celeba.txt'}",
        "--out", str(out), "--test-size", "20", "--attrs", "Smiling,Eyeglasses", "--image-size", "64",
    ]
    assert cli_main(argv) == 0
    assert "1000 images (980 train, 20 test)" in capsys.readouterr().out
    assert np.load(out / "images.npy", mmap_mode="r").shape == (1000, 64, 64, 3)
    assert pd.read_csv(out / "labels.csv").columns.tolist() == ["file", "split", "Smiling", "Eyeglasses"]
    # A second run into the same folder stops with exit status 2 and leaves the folder as it was.
    before = (out / "labels.csv").read_bytes()
    assert cli_main(argv[:-2] + ["--image-size", "128"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (out / "labels.csv").read_bytes() == before


def test_cli_default_test_size_too_large(
    celeba_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "prepare", "celeba", "--params", str(REPO / "params.yaml"),
        "--image-dir", str(celeba_sample / "images"), "--attr-file", str(celeba_sample / "list_attr_celeba.txt"),
        "--out", str(tmp_path / "out"),
    ]
    assert cli_main(argv) == 2
    assert "lower --test-size" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
