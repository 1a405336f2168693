"""RaFD preparation on real photos: layouts, face crop, person split, custom expression lists and the CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torchvision.transforms.functional as TF
from PIL import Image

from components.cli import main as cli_main
from stargan_core.config import RAFD_EXPRESSIONS
from stargan_core.datasets import load_prepared
from stargan_core.labels import CATEGORICAL, DatasetLabels
from stargan_core.prepare import prepare_rafd
from stargan_core.prepare.rafd import choose_test_people

REPO = Path(__file__).resolve().parents[1]
SEVEN = ("angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
PERFORMER = r"^(\d\d)"  # expression-sample names are PPTVeSS.jpg, PP = performer


def _rafd_photos(rafd_sample: Path) -> list[Path]:
    return sorted(rafd_sample.glob("*/Rafd*.jpg"))


def _expected_face_crop(path: Path) -> np.ndarray:
    """Crop the documented 540x540 box at (70, 170), resize to 256, then to 128, with torchvision on PIL."""
    with Image.open(path) as raw:
        face = TF.resized_crop(raw.convert("RGB"), top=170, left=70, height=540, width=540, size=[256, 256],
                               antialias=True)
    return np.asarray(TF.resize(face, [128, 128], antialias=True))


@pytest.fixture(scope="module")
def prepared_rafd(rafd_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rafd") / "prepared"
    prepare_rafd(rafd_sample, out, expressions=RAFD_EXPRESSIONS, workers=2)
    return out


@pytest.fixture(scope="module")
def prepared_expressions(expression_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("expressions") / "prepared"
    prepare_rafd(expression_sample, out, expressions=SEVEN, person_pattern=PERFORMER, workers=2)
    return out


def test_rafd_folders_labels(prepared_rafd: Path, rafd_sample: Path) -> None:
    images = np.load(prepared_rafd / "images.npy", mmap_mode="r")
    assert images.shape == (8, 128, 128, 3)
    assert images.dtype == np.uint8
    table = pd.read_csv(prepared_rafd / "labels.csv", dtype=str)
    assert list(table.columns) == ["file", "split", "expression", "person"]
    reference = pd.read_csv(rafd_sample / "labels.csv", dtype=str).set_index("file")
    for record in table.itertuples(index=False):
        assert record.expression == reference.loc[record.file, "expression"]
        assert record.person == reference.loc[record.file, "model_id"]


def test_rafd_split_by_person(prepared_rafd: Path) -> None:
    table = pd.read_csv(prepared_rafd / "labels.csv", dtype=str)
    train_people = set(table.person[table.split == "train"])
    test_people = set(table.person[table.split == "test"])
    assert train_people and test_people
    assert not train_people & test_people
    assert len(test_people) == 1  # round(0.1 * 3 people), at least 1
    assert table["split"].tolist() == sorted(table["split"].tolist(), key=["train", "test"].index)


def test_rafd_face_crop_pixels(prepared_rafd: Path, rafd_sample: Path) -> None:
    images = np.load(prepared_rafd / "images.npy", mmap_mode="r")
    table = pd.read_csv(prepared_rafd / "labels.csv", dtype=str)
    for row, file in enumerate(table.file):
        np.testing.assert_array_equal(images[row], _expected_face_crop(rafd_sample / file), err_msg=file)


def test_rafd_face_box_centres_face(prepared_rafd: Path) -> None:
    images = np.load(prepared_rafd / "images.npy").astype(np.int32)
    centre = images[:, 44:84, 44:84]  # 40x40 pixels around the middle: nose and cheeks
    corners = images[:, :12, :12]  # top-left corner: the grey studio background
    for k in range(len(images)):
        red_minus_blue = centre[k, ..., 0].mean() - centre[k, ..., 2].mean()
        assert red_minus_blue > 25, f"row {k}: centre is not skin ({red_minus_blue:.1f})"
        assert np.ptp(corners[k].mean(axis=(0, 1))) < 20, f"row {k}: corner is not grey background"


def test_rafd_manifest(prepared_rafd: Path) -> None:
    manifest = json.loads((prepared_rafd / "manifest.json").read_text())
    assert manifest["dataset"] == "rafd"
    assert manifest["label_names"] == list(RAFD_EXPRESSIONS)
    assert manifest["crop"]["face_box"] == [70, 170, 610, 710]
    assert manifest["crop"]["images_per_rule"] == {"face box": 8}
    assert manifest["counts"]["total"] == 8
    assert manifest["counts"]["train"] + manifest["counts"]["test"] == 8
    domains = manifest["domains"]
    assert {e: domains["train"][e] + domains["test"][e] for e in RAFD_EXPRESSIONS} == {
        "angry": 1, "contemptuous": 0, "disgusted": 0, "fearful": 2, "happy": 2, "neutral": 2, "sad": 0, "surprised": 1,
    }
    assert manifest["inputs"]["layout"] == "expression folders"


def test_flat_layout_labels_from_names(rafd_sample: Path, prepared_rafd: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in _rafd_photos(rafd_sample):
        (flat / path.name).symlink_to(path)
    # Profile photos (camera 000 or 180) are left out by default, as in StarGAN's 4,824-image RaFD set.
    (flat / "Rafd000_01_Caucasian_female_angry_frontal.jpg").symlink_to(_rafd_photos(rafd_sample)[0])
    out = tmp_path / "out"
    manifest = prepare_rafd(flat, out, expressions=RAFD_EXPRESSIONS, workers=1)
    assert manifest["inputs"]["layout"] == "flat"
    assert manifest["inputs"]["excluded_by_camera_angle"] == {"000": 1}
    table = pd.read_csv(out / "labels.csv", dtype=str)
    assert sorted(table.file) == sorted(path.name for path in _rafd_photos(rafd_sample))
    assert table.set_index("file").loc["Rafd090_25_Caucasian_male_surprised_frontal.jpg", "expression"] == "surprised"
    # Same photos, same people and seed: the same pixels and split as the folder layout.
    folder_table = pd.read_csv(prepared_rafd / "labels.csv", dtype=str)
    folder_splits = {Path(file).name: split for file, split in zip(folder_table.file, folder_table.split)}
    assert dict(zip(table.file, table.split)) == folder_splits


def test_given_train_test_folders_kept(rafd_sample: Path, tmp_path: Path) -> None:
    root = tmp_path / "split"
    for path in _rafd_photos(rafd_sample):
        split = "Test" if "_08_" in path.name else "train"  # folder names match in any case
        target = root / split / path.parent.name.capitalize() / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    out = tmp_path / "out"
    manifest = prepare_rafd(root, out, expressions=RAFD_EXPRESSIONS, workers=1)
    assert manifest["split"] == {"rule": "given train/ and test/ folders"}
    table = pd.read_csv(out / "labels.csv", dtype=str)
    assert set(table.person[table.split == "test"]) == {"08"}
    assert set(table.expression) <= set(RAFD_EXPRESSIONS)
    assert all(file.startswith(("train/", "Test/")) for file in table.file)


def test_expression_sample_seven_expressions(prepared_expressions: Path) -> None:
    images = np.load(prepared_expressions / "images.npy", mmap_mode="r")
    assert images.shape == (105, 128, 128, 3)
    manifest = json.loads((prepared_expressions / "manifest.json").read_text())
    assert manifest["label_names"] == list(SEVEN)
    assert manifest["people"] == {"train": 26, "test": 3}  # round(0.1 * 29)
    assert manifest["crop"]["images_per_rule"] == {"center": 105}
    table = pd.read_csv(prepared_expressions / "labels.csv", dtype=str)
    assert not set(table.person[table.split == "train"]) & set(table.person[table.split == "test"])
    assert set(table.expression[table.split == "test"]) == set(SEVEN)  # stratified: every expression is tested


def test_expression_sample_passes_through(prepared_expressions: Path, expression_sample: Path) -> None:
    images = np.load(prepared_expressions / "images.npy", mmap_mode="r")
    table = pd.read_csv(prepared_expressions / "labels.csv", dtype=str)
    for row in (0, 50, 104):
        with Image.open(expression_sample / table.file[row]) as raw:
            assert raw.size == (256, 256)
            expected = raw.convert("RGB").resize((128, 128), Image.BILINEAR)
        np.testing.assert_array_equal(images[row], np.asarray(expected), err_msg=table.file[row])


def test_expression_sample_loads_for_training(prepared_expressions: Path) -> None:
    spec = DatasetLabels("RaFD", SEVEN, CATEGORICAL)
    train = load_prepared(prepared_expressions, "train", spec)
    test = load_prepared(prepared_expressions, "test", spec)
    assert len(train) + len(test) == 105
    assert np.all(train.labels.sum(axis=1) == 1)


def test_rerun_is_byte_identical(prepared_expressions: Path, expression_sample: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    prepare_rafd(expression_sample, again, expressions=SEVEN, person_pattern=PERFORMER, workers=1)
    for name in ("images.npy", "labels.csv", "manifest.json"):
        assert (again / name).read_bytes() == (prepared_expressions / name).read_bytes(), name



def _sample_with_text_file(expression_sample: Path, root: Path) -> Path:
    """Link every sample image into ``root`` and add a text file named like an image of a new performer."""
    for path in expression_sample.glob("*/*.jpg"):
        target = root / path.relative_to(expression_sample)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    (root / "happy" / "9911b01.jpg").write_text("not an image\n")
    return root


def test_unreadable_image_rerun_identical(expression_sample: Path, tmp_path: Path) -> None:
    root = _sample_with_text_file(expression_sample, tmp_path / "faces")
    options = dict(expressions=SEVEN, person_pattern=PERFORMER, max_bad_share=0.05)
    first = prepare_rafd(root, tmp_path / "first", workers=2, **options)
    prepare_rafd(root, tmp_path / "second", workers=1, **options)
    reason = "cannot read image (not a recognised image format)"
    assert first["skipped"] == [{"file": "happy/9911b01.jpg", "reason": reason}]
    for name in ("images.npy", "labels.csv", "manifest.json"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name


def test_skipped_image_logged_once(expression_sample: Path, tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    root = _sample_with_text_file(expression_sample, tmp_path / "faces")
    with caplog.at_level(logging.WARNING, logger="stargan_core.prepare"):
        prepare_rafd(root, tmp_path / "out", expressions=SEVEN, person_pattern=PERFORMER, max_bad_share=0.05,
                     workers=1)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == ["skipped happy/9911b01.jpg: cannot read image (not a recognised image format)"]

def test_choose_test_people_stratified() -> None:
    # Ten people with every expression and ten with only "happy": a stratified choice takes one of each kind.
    people, expressions = [], []
    for person in range(10):
        for expression in ("angry", "happy", "sad"):
            people.append(f"a{person}")
            expressions.append(expression)
        people.append(f"h{person}")
        expressions.append("happy")
    for seed in range(5):
        chosen = choose_test_people(people, expressions, test_share=0.1, seed=seed)
        assert len(chosen) == 2
        assert {name[0] for name in chosen} == {"a", "h"}


def test_cli_prepare_rafd(expression_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    argv = [
        "prepare", "rafd", "--params", str(REPO / "params.yaml"), "--image-dir", str(expression_sample),
        "--out", str(out), "--expressions", ",".join(SEVEN), "--person-pattern", PERFORMER, "--test-share", "0.2",
        "--workers", "2",
    ]
    assert cli_main(argv) == 0
    assert "105 images" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["people"]["test"] == 6  # round(0.2 * 29)
