"""Tests of the Translator API: targets, input preparation, batching, grids and checkpoint checks.

Checkpoints are real: tiny models trained for two iterations with ``train`` on real CelebA sample images, and the
official-format checkpoint converted with ``import_official``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan_core.checkpoint import atomic_torch_save, load_checkpoint
from stargan_core.config import load_config
from stargan_core.datasets import LabeledImages
from stargan_core.errors import CheckpointError, ConfigError, DataError
from stargan_core.images import center_crop_resize, load_rgb
from stargan_core.labels import DatasetLabels, LabelSpace
from stargan_core.models import Generator
from stargan_core.official import import_official
from stargan_core.train import DomainData, train
from stargan_core.translate import (
    Target,
    Translator,
    build_targets,
    collect_inputs,
    combo_targets,
    expression_targets,
    make_grid,
    parse_source_label,
    parse_target,
    single_targets,
    target_label,
)

CELEBA_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
EXPRESSIONS = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
CELEBA = LabelSpace((DatasetLabels("CelebA", CELEBA_ATTRS, "binary"),))
JOINT = LabelSpace((DatasetLabels("CelebA", CELEBA_ATTRS, "binary"), DatasetLabels("RaFD", EXPRESSIONS, "categorical")))
RAFD = LabelSpace((DatasetLabels("RaFD", EXPRESSIONS, "categorical"),))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run the tiny models on one thread: OpenMP spin-waiting on shared cores makes 2 threads much slower here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def real_faces(celeba_sample: Path, count: int, size: int = 32) -> np.ndarray:
    files = sorted((celeba_sample / "images").glob("*.jpg"))[:count]
    return np.stack([np.asarray(center_crop_resize(load_rgb(f), 178, size)) for f in files])


def train_tiny(out: Path, dataset: str, faces: np.ndarray) -> Path:
    """Train a 32 px model for two iterations and return its run folder."""
    cfg = load_config(None, [
        "model.g_conv_dim=8", "model.d_conv_dim=8", "model.g_repeat_num=1", "model.d_repeat_num=3",
        "data.image_size=32", "train.num_iters=2", "train.num_iters_decay=1", "train.n_critic=1",
        "train.log_step=1", "train.sample_step=2", "train.model_save_step=2", "train.batch_size=4",
        "tracking.mlflow=false", f"train.dataset={dataset}",
    ])
    rng = np.random.default_rng(0)
    data = {}
    if dataset in ("CelebA", "Both"):
        labels = rng.integers(0, 2, (len(faces), 5)).astype(np.float32)
        images = LabeledImages(faces, labels, DatasetLabels("CelebA", cfg.data.selected_attrs, "binary"))
        data["CelebA"] = DomainData(images, images)
    if dataset in ("RaFD", "Both"):
        labels = np.eye(8, dtype=np.float32)[rng.integers(0, 8, len(faces))]
        images = LabeledImages(faces, labels, DatasetLabels("RaFD", cfg.data.expressions, "categorical"))
        data["RaFD"] = DomainData(images, images)
    train(cfg, out, data)
    return out


@pytest.fixture(scope="module")
def faces(celeba_sample: Path) -> np.ndarray:
    return real_faces(celeba_sample, 8)


@pytest.fixture(scope="module")
def celeba_run(tmp_path_factory, faces) -> Path:
    return train_tiny(tmp_path_factory.mktemp("celeba_run"), "CelebA", faces)


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory, faces) -> Path:
    return train_tiny(tmp_path_factory.mktemp("joint_run"), "Both", faces)


@pytest.fixture(scope="module")
def official_pt(tmp_path_factory, official_compat: Path) -> Path:
    out = tmp_path_factory.mktemp("official") / "official.pt"
    return import_official(official_compat / "1000-G.ckpt", official_compat / "1000-D.ckpt", list(CELEBA_ATTRS),
                           "CelebA", out)


def celeba_photos(celeba_sample: Path, count: int) -> list[Image.Image]:
    return [load_rgb(f) for f in sorted((celeba_sample / "images").glob("*.jpg"))[:count]]


# ---------------------------------------------------------------------------------------------------------------
# Targets


def test_parse_target_sets_and_clears():
    target = parse_target(CELEBA, "Blond_Hair,Male=0")
    assert target.name == "Blond_Hair+Male=0"
    assert target.assign == ((1, 1.0), (3, 0.0))
    assert parse_target(CELEBA, "Young=1").name == "Young"
    assert parse_target(CELEBA, "Male=flip").flip == (3,)


def test_parse_target_reads_its_name_back():
    for text in ("Blond_Hair,Male=0", "Black_Hair+Young=flip", "Male=flip+Young=flip"):
        target = parse_target(CELEBA, text)
        assert parse_target(CELEBA, target.name) == target


def test_parse_target_unknown_name_suggests():
    with pytest.raises(CheckpointError, match="did you mean Blond_Hair") as error:
        parse_target(CELEBA, "Blonde_Hair")
    assert "valid names: Black_Hair, Blond_Hair, Brown_Hair, Male, Young" in str(error.value)
    assert "\n" not in str(error.value)


def test_parse_target_expression_in_attrs_hints():
    with pytest.raises(CheckpointError, match="happy is a RaFD label, which --expressions sets"):
        parse_target(JOINT, "happy")


@pytest.mark.parametrize("text, message", [
    ("Black_Hair,Blond_Hair", "one-of-N"),
    ("Black_Hair,Blond_Hair=flip", "one-of-N"),
    ("Male,Male=0", "given twice"),
    ("Male=2", "invalid value '2' for Male"),
    (" , ", "empty"),
])
def test_parse_target_rejects_invalid(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_target(CELEBA, text)


def test_parse_target_needs_binary_labels():
    with pytest.raises(CheckpointError, match="binary attributes"):
        parse_target(RAFD, "Male")


def test_target_label_edits_original_label():
    c_org = torch.tensor([[1.0, 0, 0, 0, 1], [0, 0, 1, 1, 0]])  # Black_Hair+Young, Brown_Hair+Male
    cases = {
        "Blond_Hair": [[0, 1, 0, 0, 1], [0, 1, 0, 1, 0]],
        "Male=flip": [[1, 0, 0, 1, 1], [0, 0, 1, 0, 0]],
        "Black_Hair=0": [[0, 0, 0, 0, 1], [0, 0, 1, 1, 0]],
        "Brown_Hair=flip": [[0, 0, 1, 0, 1], [0, 0, 0, 1, 0]],
        "Blond_Hair,Male=0,Young": [[0, 1, 0, 0, 1], [0, 1, 0, 0, 1]],
    }
    for text, expected in cases.items():
        c_trg = target_label(CELEBA, parse_target(CELEBA, text), 0, c_org)
        assert torch.equal(c_trg, torch.tensor(expected, dtype=torch.float32)), text


def test_single_targets_match_all_domain_targets():
    c_org = torch.tensor([[1.0, 0, 0, 0, 1], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]])
    for space in (CELEBA, JOINT):
        ours = [target_label(space, t, 0, c_org) for t in single_targets(space)]
        theirs = [c for _, c in space.all_domain_targets(0, c_org)]
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b)


def test_single_target_names():
    names = [t.name for t in single_targets(JOINT)]
    assert names[:5] == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male=flip", "Young=flip"]
    assert names[5:] == list(EXPRESSIONS)


def test_combo_targets_follow_fig4_order():
    names = [t.name for t in combo_targets(CELEBA, ["Blond_Hair"])]
    assert names == ["Blond_Hair", "Male=flip", "Young=flip", "Blond_Hair+Male=flip", "Blond_Hair+Young=flip",
                     "Male=flip+Young=flip", "Blond_Hair+Male=flip+Young=flip"]


def test_combo_targets_every_hair_colour():
    targets = combo_targets(CELEBA)
    assert len(targets) == 3 + 1 + 1 + 3 + 3 + 1 + 3
    c_org = torch.tensor([[1.0, 0, 0, 1, 0]])  # black-haired old man
    by_name = {t.name: target_label(CELEBA, t, 0, c_org) for t in targets}
    assert by_name["Brown_Hair+Male=flip+Young=flip"].tolist() == [[0, 0, 1, 0, 1]]


def test_combo_targets_reject_missing_attributes():
    space = LabelSpace((DatasetLabels("CelebA", ("Black_Hair", "Eyeglasses", "Young"), "binary"),))
    with pytest.raises(CheckpointError, match="lack Male"):
        combo_targets(space)
    no_hair = LabelSpace((DatasetLabels("CelebA", ("Male", "Young"), "binary"),))
    with pytest.raises(CheckpointError, match="a hair colour"):
        combo_targets(no_hair)


def test_combo_targets_reject_invalid_hair():
    with pytest.raises(ConfigError, match="Male is not a hair colour"):
        combo_targets(CELEBA, ["Male"])
    with pytest.raises(CheckpointError, match="did you mean Blond_Hair"):
        combo_targets(CELEBA, ["Blonde_Hair"])


def test_expression_target_uses_mask_vector():
    (target,) = expression_targets(JOINT, ["happy"])
    c_trg = target_label(JOINT, target, 0, torch.tensor([[1.0, 0, 0, 1, 1]]))
    expected = [0.0] * 5 + [0, 0, 0, 0, 1, 0, 0, 0] + [0, 1]
    assert c_trg.tolist() == [expected]


def test_expression_targets_need_categorical_labels():
    with pytest.raises(CheckpointError, match="categorical expressions"):
        expression_targets(CELEBA, ["happy"])
    with pytest.raises(CheckpointError, match="did you mean happy"):
        expression_targets(RAFD, ["hapy"])


def test_build_targets_combines_and_deduplicates():
    targets = build_targets(JOINT, ["Blond_Hair"], ["single"], "happy,angry")
    names = [t.name for t in targets]
    assert names[0] == "Blond_Hair"
    assert names.count("Blond_Hair") == 1
    assert names.count("happy") == 1
    assert len(names) == 5 + 8


def test_build_targets_rejects_invalid_requests():
    with pytest.raises(ConfigError, match="no target given"):
        build_targets(CELEBA)
    with pytest.raises(ConfigError, match="--hair applies to --mode combos"):
        build_targets(CELEBA, ["Male"], hair="Blond_Hair")
    with pytest.raises(ConfigError, match="mode 'pairs' is invalid"):
        build_targets(CELEBA, modes=["pairs"])


def test_source_label_parsing():
    assert parse_source_label(CELEBA, 0, "Black_Hair,Young").tolist() == [1, 0, 0, 0, 1]
    assert parse_source_label(CELEBA, 0, None).tolist() == [0, 0, 0, 0, 0]
    with pytest.raises(ConfigError, match="one-of-N"):
        parse_source_label(CELEBA, 0, "Black_Hair,Blond_Hair")
    with pytest.raises(ConfigError, match="flip is not a value"):
        parse_source_label(CELEBA, 0, "Male=flip")
    with pytest.raises(ConfigError, match="categorical labels"):
        parse_source_label(RAFD, 0, "happy")


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


def test_from_checkpoint_run_folder_and_file(celeba_run: Path):
    by_folder = Translator.from_checkpoint(celeba_run, device="cpu")
    by_file = Translator.from_checkpoint(celeba_run / "checkpoints" / "step_00000002.pt", device="cpu")
    assert by_folder.image_size == by_file.image_size == 32
    assert by_folder.space == CELEBA
    assert by_folder.crop_sizes["CelebA"] == 178


def test_from_checkpoint_image_size_mismatch(celeba_run: Path):
    with pytest.raises(CheckpointError, match="trained at 32 px but 64 px was requested"):
        Translator.from_checkpoint(celeba_run, device="cpu", image_size=64)


def test_from_checkpoint_inconsistent_labels(celeba_run: Path, tmp_path: Path):
    payload = load_checkpoint(celeba_run)
    payload["labels"] = {"datasets": [{"name": "CelebA", "names": ["Black_Hair", "Male"], "kind": "binary"}]}
    atomic_torch_save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="reads 5 label values but the labels"):
        Translator.from_checkpoint(tmp_path / "bad.pt", device="cpu")


def test_from_checkpoint_unknown_source_dataset(celeba_run: Path):
    with pytest.raises(CheckpointError, match="source dataset 'RaFD'"):
        Translator.from_checkpoint(celeba_run, device="cpu", source_dataset="RaFD")


def test_check_labels(joint_run: Path):
    translator = Translator.from_checkpoint(joint_run, device="cpu")
    translator.check_labels(DatasetLabels("RaFD", EXPRESSIONS, "categorical"))
    with pytest.raises(CheckpointError, match="were expected"):
        translator.check_labels(DatasetLabels("CelebA", ("Male", "Young"), "binary"))
    with pytest.raises(CheckpointError, match="has no Other labels"):
        translator.check_labels(DatasetLabels("Other", ("a",), "binary"))


def test_official_import_matches_reference(official_pt: Path, official_compat: Path):
    translator = Translator.from_checkpoint(official_pt, device="cpu")
    x_real = torch.from_numpy(np.load(official_compat / "input_x.npy"))
    c_trg = torch.from_numpy(np.load(official_compat / "input_c.npy"))
    expected = torch.from_numpy(np.load(official_compat / "expected_g_out.npy"))
    x_fake = translator.translate_batch(x_real, c_trg)
    assert (x_fake - expected).abs().max().item() < 1e-5


def test_device_checks():
    with pytest.raises(ConfigError, match="is invalid"):
        Translator(Generator(8, 5, 1), CELEBA, 32, device="toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            Translator(Generator(8, 5, 1), CELEBA, 32, device="cuda")


# ---------------------------------------------------------------------------------------------------------------
# Preparation


def test_prepare_matches_training_crop(celeba_sample: Path):
    translator = Translator(Generator(8, 5, 1), CELEBA, 32, device="cpu")
    (photo,) = celeba_photos(celeba_sample, 1)
    assert photo.size == (178, 218)
    assert translator.crop_side(178, 218) == 178
    expected = np.asarray(center_crop_resize(photo, 178, 32))
    assert np.array_equal(translator.prepare(photo), expected)


def test_prepare_scales_crop_with_photo_size(celeba_sample: Path):
    translator = Translator(Generator(8, 5, 1), CELEBA, 32, device="cpu")
    (photo,) = celeba_photos(celeba_sample, 1)
    large = photo.resize((356, 436), Image.BICUBIC)
    assert translator.crop_side(356, 436) == 356
    difference = np.abs(translator.prepare(large).astype(int) - translator.prepare(photo).astype(int))
    assert difference.mean() < 4.0


def test_prepare_uses_checkpoint_crop_size(celeba_sample: Path):
    translator = Translator(Generator(8, 5, 1), CELEBA, 32, {"CelebA": 128}, device="cpu")
    (photo,) = celeba_photos(celeba_sample, 1)
    assert translator.crop_side(178, 218) == 128
    assert translator.crop_side(356, 436) == 256
    assert np.array_equal(translator.prepare(photo), np.asarray(center_crop_resize(photo, 128, 32)))


def test_prepare_rafd_crop_keeps_short_side(rafd_sample: Path):
    translator = Translator(Generator(8, 8, 1), RAFD, 32, device="cpu")
    photo = load_rgb(sorted(rafd_sample.glob("*/*.jpg"))[0])
    assert photo.size == (681, 1024)
    assert translator.crop_side(*photo.size) == 681
    assert translator.prepare(photo).shape == (32, 32, 3)


def test_prepare_without_crop_only_resizes(celeba_sample: Path):
    translator = Translator(Generator(8, 5, 1), CELEBA, 32, device="cpu")
    (photo,) = celeba_photos(celeba_sample, 1)
    expected = np.asarray(photo.resize((32, 32), Image.BILINEAR))
    assert np.array_equal(translator.prepare(photo, crop=False), expected)


def test_prepare_applies_exif_orientation():
    translator = Translator(Generator(8, 5, 1), CELEBA, 32, device="cpu")
    image = Image.new("RGB", (60, 30), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 30, 30))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise, so the blue half is on top
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    prepared = translator.prepare(Image.open(io.BytesIO(buffer.getvalue())))
    assert prepared[2, 16].tolist() == [0, 0, 255]
    assert prepared[29, 16].tolist() == [255, 0, 0]


def test_prepare_composites_transparency_on_white():
    translator = Translator(Generator(8, 5, 1), CELEBA, 32, device="cpu")
    clear = Image.new("RGBA", (40, 50), (200, 0, 0, 0))
    assert (translator.prepare(clear) == 255).all()


# ---------------------------------------------------------------------------------------------------------------
# Translation


def test_translate_pil_images(celeba_run: Path, celeba_sample: Path):
    translator = Translator.from_checkpoint(celeba_run, device="cpu")
    photos = celeba_photos(celeba_sample, 3)
    rows = translator.translate(photos, ["Blond_Hair,Male=0", "Young=flip"], c_org="Black_Hair")
    assert len(rows) == 3
    assert all(len(row) == 2 for row in rows)
    assert all(image.size == (32, 32) and image.mode == "RGB" for row in rows for image in row)
    single = translator.translate(photos, "Blond_Hair")
    assert [image.size for image in single] == [(32, 32)] * 3
    assert translator.translate([], "Blond_Hair") == []


def test_translate_tensor_shapes(celeba_run: Path, faces: np.ndarray):
    translator = Translator.from_checkpoint(celeba_run, device="cpu")
    x_real = torch.from_numpy(faces[:2]).permute(0, 3, 1, 2).float() / 127.5 - 1
    out = translator.translate(x_real, ["Male", "Young=0"])
    assert out.shape == (2, 2, 3, 32, 32)
    assert out.min() >= -1
    assert out.max() <= 1
    assert translator.translate(x_real[0], "Male").shape == (1, 3, 32, 32)
    assert translator.translate(x_real[:0], ["Male"]).shape == (0, 1, 3, 32, 32)
    with pytest.raises(DataError, match=r"expected \(N, 3, 32, 32\)"):
        translator.translate(torch.zeros(1, 3, 64, 64), "Male")
    with pytest.raises(DataError, match="expected floats"):
        translator.translate(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "Male")


def test_translate_labels_follow_original(celeba_run: Path, faces: np.ndarray):
    """A flip gives different outputs for inputs whose original labels differ."""
    translator = Translator.from_checkpoint(celeba_run, device="cpu")
    x_real = torch.from_numpy(faces[:1]).permute(0, 3, 1, 2).float() / 127.5 - 1
    to_male = translator.translate(x_real, "Male=flip", c_org="Black_Hair")
    to_female = translator.translate(x_real, "Male=flip", c_org="Black_Hair,Male")
    assert torch.equal(to_male, translator.translate(x_real, "Male", c_org="Black_Hair"))
    assert torch.equal(to_female, translator.translate(x_real, "Male=0", c_org="Black_Hair"))
    assert not torch.equal(to_male, to_female)
    per_image = translator.translate(x_real.expand(2, -1, -1, -1), "Male=flip",
                                     c_org=torch.tensor([[1.0, 0, 0, 0, 0], [1.0, 0, 0, 1, 0]]))
    assert (per_image[0] - to_male[0]).abs().max().item() < 1e-5
    assert (per_image[1] - to_female[0]).abs().max().item() < 1e-5


def test_translate_joint_expression(joint_run: Path, celeba_sample: Path):
    translator = Translator.from_checkpoint(joint_run, device="cpu")
    assert translator.source_labels.name == "CelebA"
    photos = celeba_photos(celeba_sample, 2)
    rows = translator.translate(photos, translator.targets(expressions="happy,angry", attrs=["Blond_Hair"]))
    assert len(rows[0]) == 3
    assert translator.labels("happy", 1)[0, -2:].tolist() == [0, 1]
    assert translator.labels("Blond_Hair", 1)[0, -2:].tolist() == [1, 0]


def test_batch_matches_single_images(celeba_run: Path, celeba_sample: Path):
    translator = Translator.from_checkpoint(celeba_run, device="cpu")
    photos = celeba_photos(celeba_sample, 6)
    targets = translator.targets(modes=["single"])
    x_real = torch.from_numpy(np.stack([translator.prepare(p) for p in photos])).permute(0, 3, 1, 2).float()
    x_real = x_real / 127.5 - 1
    batched = translator.translate(x_real, targets, batch_size=6)
    alone = torch.cat([translator.translate(x_real[n:n + 1], targets, batch_size=1) for n in range(6)])
    assert torch.equal(batched, alone)
    rows_batched = translator.translate(photos, targets, batch_size=4)
    rows_alone = [translator.translate([p], targets)[0] for p in photos]
    pixels_batched = np.stack([np.asarray(image) for row in rows_batched for image in row]).astype(int)
    pixels_alone = np.stack([np.asarray(image) for row in rows_alone for image in row]).astype(int)
    assert np.array_equal(pixels_batched, pixels_alone)


# ---------------------------------------------------------------------------------------------------------------
# Grids and output names


def test_make_grid_layout_and_clamping():
    x_real = torch.full((3, 32, 32), 1.5)  # out of range: must clamp to white
    x_fakes = [torch.full((3, 32, 32), -3.0), torch.zeros(3, 32, 32)]
    grid = make_grid(x_real, x_fakes, ["Blond_Hair+Male=flip+Young=flip", "happy"])
    assert grid.dtype == np.uint8
    assert grid.shape[1] == 3 * (32 + 2) + 2
    bottom = grid.shape[0] - 2 - 32
    assert (grid[bottom:bottom + 32, 2:34] == 255).all()
    assert (grid[bottom:bottom + 32, 36:68] == 0).all()
    assert (grid[bottom:bottom + 32, 70:102] == 128).all()
    header = grid[:bottom - 2]
    assert (header < 128).any()  # label text was drawn
    assert header.shape[0] >= 3 * 10  # the long label wraps over several lines


def test_collect_inputs_resolves_collisions(tmp_path: Path):
    for name in ("x.jpg", "x.png", "x_jpg.bmp", "a/x.jpg", "b/x.jpg", "A/y.jpg", "a/y.jpg", ".hidden.jpg",
                 "notes.txt", "out/old.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    pairs = collect_inputs(tmp_path, exclude=tmp_path / "out")
    keys = {file.relative_to(tmp_path).as_posix(): key for file, key in pairs}
    assert keys == {
        "A/y.jpg": "A/y", "a/x.jpg": "a/x", "a/y.jpg": "a/y-2", "b/x.jpg": "b/x",
        "x.jpg": "x_jpg", "x.png": "x_png", "x_jpg.bmp": "x_jpg-2",
    }
    assert collect_inputs(tmp_path / "x.png") == [(tmp_path / "x.png", "x")]


def test_collect_inputs_missing_or_empty(tmp_path: Path):
    with pytest.raises(DataError, match="input not found"):
        collect_inputs(tmp_path / "nope")
    with pytest.raises(DataError, match="no image files"):
        collect_inputs(tmp_path)


def test_target_is_hashable_value():
    assert Target("Male", 0, ((3, 1.0),)) == parse_target(CELEBA, "Male")
