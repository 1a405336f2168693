"""Bad input for preparation, on generated files: attribute files, folder layouts, image modes, broken images."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, UnidentifiedImageError

from stargan_core.errors import DataError
from stargan_core.prepare import parse_attribute_file, prepare_celeba, prepare_rafd
from stargan_core.prepare.celeba import select_attributes
from stargan_core.prepare.common import SKIPPED_LOG_LIMIT, decode_error_reason, log_skipped
from stargan_core.prepare.rafd import validate_face_box

NAMES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
ROWS = {
    "000001.jpg": (-1, -1, 1, -1, 1),
    "000002.jpg": (1, -1, -1, 1, 1),
    "000003.jpg": (-1, 1, -1, -1, -1),
}
EXPECTED_VALUES = np.array([[0, 0, 1, 0, 1], [1, 0, 0, 1, 1], [0, 1, 0, 0, 0]], dtype=np.uint8)
EXPRESSIONS = ("angry", "happy", "neutral")


def _text_attributes(separator: str = " ", newline: str = "\n", count: bool = True, trailer: str = "") -> str:
    lines = [str(len(ROWS))] if count else []
    lines.append(separator.join(NAMES) + " ")
    for name, values in ROWS.items():
        lines.append(name + separator + separator.join(f"{v:2d}" for v in values))
    return newline.join(lines) + newline + trailer


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def _colour_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (178, 218)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# Attribute files


def test_attribute_file_original_layout(tmp_path: Path) -> None:
    table = parse_attribute_file(_write(tmp_path / "list_attr_celeba.txt", _text_attributes()))
    assert table.names == NAMES
    assert table.files == tuple(ROWS)
    np.testing.assert_array_equal(table.values, EXPECTED_VALUES)
    assert table.layout == "txt"


@pytest.mark.parametrize(
    "text",
    [
        _text_attributes(newline="\r\n"),
        _text_attributes(separator="   "),
        _text_attributes(trailer="\n\n"),
        _text_attributes(newline="\r\n", separator="  ", trailer="\r\n"),
        "\ufeff" + _text_attributes(),
    ],
    ids=["crlf", "runs-of-spaces", "trailing-blank-lines", "all-three", "utf8-bom"],
)
def test_attribute_file_variants_parse(tmp_path: Path, text: str) -> None:
    table = parse_attribute_file(_write(tmp_path / "attrs.txt", text))
    assert table.names == NAMES
    assert table.files == tuple(ROWS)
    np.testing.assert_array_equal(table.values, EXPECTED_VALUES)


def test_attribute_file_without_count_line(tmp_path: Path) -> None:
    table = parse_attribute_file(_write(tmp_path / "attrs.txt", _text_attributes(count=False)))
    assert table.layout == "txt-without-count"
    np.testing.assert_array_equal(table.values, EXPECTED_VALUES)


def test_attribute_file_csv_variant(tmp_path: Path) -> None:
    lines = ["image_id," + ",".join(NAMES)] + [f"{n}," + ",".join(str(v) for v in vals) for n, vals in ROWS.items()]
    table = parse_attribute_file(_write(tmp_path / "list_attr_celeba.csv", "\r\n".join(lines) + "\r\n"))
    assert table.layout == "csv"
    assert table.names == NAMES
    np.testing.assert_array_equal(table.values, EXPECTED_VALUES)


def test_attribute_file_csv_without_image_id(tmp_path: Path) -> None:
    path = _write(tmp_path / "attrs.csv", "name," + ",".join(NAMES) + "\n000001.jpg,1,1,1,1,1\n")
    with pytest.raises(DataError, match="must start with image_id.*expected list_attr_celeba.txt"):
        parse_attribute_file(path)


def test_attribute_file_without_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "attrs.txt", "000001.jpg 1 -1 1 -1 1\n")
    with pytest.raises(DataError, match=r"line 1: .* is neither a count nor attribute names; expected"):
        parse_attribute_file(path)



def test_attribute_file_garbage_first_line(tmp_path: Path) -> None:
    text = _text_attributes().replace(f"{len(ROWS)}\n", "exported attributes\n", 1)
    path = _write(tmp_path / "attrs.txt", text)
    message = (r"attrs\.txt, line 1: 'exported attributes' is neither a count nor attribute names, and line 2 "
               r"contains 5 attribute names; replace line 1 with the image count or delete it")
    with pytest.raises(DataError, match=message):
        parse_attribute_file(path)

def test_attribute_row_wrong_value_count(tmp_path: Path) -> None:
    text = _text_attributes().replace("000002.jpg  1 -1 -1  1  1", "000002.jpg  1 -1 -1  1")
    path = _write(tmp_path / "attrs.txt", text)
    with pytest.raises(DataError, match=r"attrs\.txt, line 4: expected a file name and 5 values, found 4 values"):
        parse_attribute_file(path)


def test_attribute_invalid_value(tmp_path: Path) -> None:
    text = _text_attributes().replace("000003.jpg -1  1", "000003.jpg -1  2")
    message = r"line 5: value '2' for Blond_Hair is invalid; expected 1 \(present\), -1 or 0 \(absent\)"
    with pytest.raises(DataError, match=message):
        parse_attribute_file(_write(tmp_path / "attrs.txt", text))


def test_attribute_file_repeated_row(tmp_path: Path) -> None:
    text = _text_attributes().replace("000003.jpg", "000001.jpg")
    with pytest.raises(DataError, match=r"line 5: 000001.jpg is already listed on line 3"):
        parse_attribute_file(_write(tmp_path / "attrs.txt", text))


def test_unknown_attribute_lists_closest(tmp_path: Path) -> None:
    table = parse_attribute_file(_write(tmp_path / "attrs.txt", _text_attributes()))
    with pytest.raises(DataError, match=r"'Blond_hair' is not in .*closest valid names: Blond_Hair"):
        select_attributes(table, ["Blond_hair"])
    with pytest.raises(DataError, match=r"'Yung' is not in .*closest valid names: Young"):
        select_attributes(table, ["Male", "Yung"])


def test_empty_attribute_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is empty; expected"):
        parse_attribute_file(_write(tmp_path / "attrs.txt", "\n\n"))


# ---------------------------------------------------------------------------------------------------------------
# CelebA images: broken files, the bad-image share, and the output folder


def _celeba_set(root: Path, count: int) -> tuple[Path, Path, dict[str, tuple[int, int, int]]]:
    """Write ``count`` uniform 178x218 JPEGs with distinct colours and a matching attribute file."""
    colours = {f"{i:06d}.jpg": (i * 6 % 256, 255 - i * 5 % 256, 40 + i % 7 * 30) for i in range(1, count + 1)}
    for name, colour in colours.items():
        _colour_image(root / "images" / name, colour)
    lines = [str(count), " ".join(NAMES)] + [f"{name} " + " ".join("1" if i % 2 else "-1" for i in range(5))
                                            for name in colours]
    attr_file = _write(root / "list_attr_celeba.txt", "\n".join(lines) + "\n")
    return root / "images", attr_file, colours


def _break_images(images: Path) -> list[str]:
    """Truncate one JPEG, empty another and delete a third; return their names."""
    data = (images / "000004.jpg").read_bytes()
    (images / "000004.jpg").write_bytes(data[: len(data) // 2])
    (images / "000009.jpg").write_bytes(b"")
    (images / "000013.jpg").unlink()
    return ["000004.jpg", "000009.jpg", "000013.jpg"]


def test_broken_images_skipped_and_listed(tmp_path: Path) -> None:
    images, attr_file, colours = _celeba_set(tmp_path / "raw", 40)
    broken = _break_images(images)
    (images / ".000001.jpg").write_bytes(b"hidden file, not an image")
    out = tmp_path / "out"
    manifest = prepare_celeba(images, attr_file, out, selected_attrs=NAMES, test_size=10, max_bad_share=0.1,
                              workers=2)
    reasons = {item["file"]: item["reason"] for item in manifest["skipped"]}
    assert sorted(reasons) == broken
    assert "truncated" in reasons["000004.jpg"]
    assert reasons["000009.jpg"] == "empty file"
    assert reasons["000013.jpg"] == "file not found"
    assert manifest["counts"] == {"total": 37, "train": 27, "test": 10}  # the test size stays exact
    table = pd.read_csv(out / "labels.csv", dtype={"file": str})
    assert not set(table.file) & set(broken)
    stored = np.load(out / "images.npy")
    for row, name in enumerate(table.file):  # each row has its own file's colour after reordering
        assert np.abs(stored[row, 64, 64].astype(int) - colours[name]).max() <= 3, name



def test_decode_reason_is_stable() -> None:
    message = "000001.jpg: cannot read image (broken data stream when reading <_io.BytesIO object at 0x7f8afbffc5e0>)"
    expected = "cannot read image (broken data stream when reading)"
    assert decode_error_reason(DataError(message), "000001.jpg") == expected
    unknown = DataError("000002.jpg: cannot read image (cannot identify image file <_io.BytesIO object at 0x7f00>)")
    unknown.__cause__ = UnidentifiedImageError("cannot identify image file <_io.BytesIO object at 0x7f00>")
    assert decode_error_reason(unknown, "000002.jpg") == "cannot read image (not a recognised image format)"


def test_skipped_images_logged_up_to_limit(caplog: pytest.LogCaptureFixture) -> None:
    skipped = [{"file": f"{i:06d}.jpg", "reason": "empty file"} for i in range(SKIPPED_LOG_LIMIT + 5)]
    with caplog.at_level(logging.WARNING, logger="stargan_core.prepare"):
        log_skipped(skipped)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == SKIPPED_LOG_LIMIT + 1
    assert messages[0] == "skipped 000000.jpg: empty file"
    assert messages[-1] == "skipped 5 more images, not listed here"

def test_too_many_bad_images_leaves_no_output(tmp_path: Path) -> None:
    images, attr_file, _ = _celeba_set(tmp_path / "raw", 40)
    _break_images(images)
    out = tmp_path / "prepared" / "celeba"
    message = r"3 of 40 images are missing or unreadable .*more than data.max_bad_share 5.0%"
    with pytest.raises(DataError, match=message):
        prepare_celeba(images, attr_file, out, selected_attrs=NAMES, test_size=10, max_bad_share=0.05, workers=2)
    assert not out.exists()
    assert list((tmp_path / "prepared").iterdir()) == []  # no temporary folder left either


def test_existing_output_needs_force(tmp_path: Path) -> None:
    images, attr_file, _ = _celeba_set(tmp_path / "raw", 12)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="already exists and is not empty; pass --force"):
        prepare_celeba(images, attr_file, out, selected_attrs=NAMES, test_size=2, workers=1)
    assert (out / "notes.txt").read_text() == "keep me"
    prepare_celeba(images, attr_file, out, selected_attrs=NAMES, test_size=2, workers=1, force=True)
    assert sorted(path.name for path in out.iterdir()) == ["images.npy", "labels.csv", "manifest.json"]
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_empty_output_folder_is_used(tmp_path: Path) -> None:
    images, attr_file, _ = _celeba_set(tmp_path / "raw", 12)
    out = tmp_path / "out"
    out.mkdir()
    prepare_celeba(images, attr_file, out, selected_attrs=NAMES, test_size=2, workers=1)
    assert (out / "images.npy").is_file()


def test_wrong_image_folder(tmp_path: Path) -> None:
    _, attr_file, _ = _celeba_set(tmp_path / "raw", 12)
    with pytest.raises(DataError, match="none of the 12 images listed .* pass --image-dir"):
        prepare_celeba(tmp_path / "raw", attr_file, tmp_path / "out", selected_attrs=NAMES, test_size=2)


# ---------------------------------------------------------------------------------------------------------------
# Expression folders and image modes


def _mode_images(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Write one 256x256 image per Pillow mode and return file name -> expected RGB colour after conversion."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    size = (256, 256)

    Image.new("L", size, 100).save(folder / "01_grey.png")
    expected["01_grey.png"] = (100, 100, 100)
    Image.new("1", size, 1).save(folder / "02_bilevel.png")
    expected["02_bilevel.png"] = (255, 255, 255)
    Image.new("LA", size, (60, 255)).save(folder / "03_grey_alpha.png")
    expected["03_grey_alpha.png"] = (60, 60, 60)
    palette = Image.new("P", size, 1)
    palette.putpalette([0, 0, 0, 200, 30, 40] + [0] * 762)
    palette.save(folder / "04_palette.png")
    expected["04_palette.png"] = (200, 30, 40)
    palette.save(folder / "05_palette_transparent.png", transparency=1)  # transparent on white background
    expected["05_palette_transparent.png"] = (255, 255, 255)
    Image.new("RGBA", size, (10, 200, 90, 255)).save(folder / "06_rgba.png")
    expected["06_rgba.png"] = (10, 200, 90)
    Image.new("RGBA", size, (0, 0, 0, 0)).save(folder / "07_rgba_clear.png")
    expected["07_rgba_clear.png"] = (255, 255, 255)
    Image.new("CMYK", size, (0, 255, 255, 0)).save(folder / "08_cmyk.jpg", quality=100)
    expected["08_cmyk.jpg"] = (255, 0, 0)
    Image.new("CMYK", size, (255, 0, 255, 0)).save(folder / "09_cmyk.tif")
    expected["09_cmyk.tif"] = (0, 255, 0)
    Image.fromarray(np.full((256, 256), 32768, dtype=np.uint16)).save(folder / "10_grey16.png")
    expected["10_grey16.png"] = (128, 128, 128)
    Image.fromarray(np.full((256, 256), 0.5, dtype=np.float32), mode="F").save(folder / "11_float.tif")
    expected["11_float.tif"] = (128, 128, 128)
    Image.new("RGB", size, (1, 2, 3)).save(folder / "12_rgb.bmp")
    expected["12_rgb.bmp"] = (1, 2, 3)
    Image.new("RGB", size, (220, 120, 20)).save(folder / "13_rgb.webp", lossless=True)
    expected["13_rgb.webp"] = (220, 120, 20)
    return expected


def test_every_image_mode_becomes_rgb(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    expected = _mode_images(root / "happy")
    out = tmp_path / "out"
    prepare_rafd(root, out, expressions=EXPRESSIONS, person_pattern=r"^(\d\d)_", workers=2)
    table = pd.read_csv(out / "labels.csv", dtype=str)
    stored = np.load(out / "images.npy")
    assert stored.shape == (13, 128, 128, 3)
    for row, file in enumerate(table.file):
        colour = stored[row, 64, 64].astype(int)
        assert np.abs(colour - expected[Path(file).name]).max() <= 2, f"{file}: {colour.tolist()}"
        assert (stored[row] == stored[row, 64, 64]).all(), f"{file} is not uniform"


def _expression_tree(root: Path, folders: dict[str, int]) -> Path:
    for folder, count in folders.items():
        for person in range(count):
            _colour_image(root / folder / f"{person:02d}_{folder}.png", (person * 40, 90, 160), (256, 256))
    return root


def test_hidden_files_and_folders_ignored(tmp_path: Path) -> None:
    root = _expression_tree(tmp_path / "faces", {"angry": 3, "Happy": 3})
    (root / ".DS_Store").write_bytes(b"\0\1")
    (root / "labels.csv").write_text("file,expression\n")  # files that are not images are ignored too
    _colour_image(root / ".thumbnails" / "00_angry.png", (0, 0, 0), (256, 256))
    _colour_image(root / "angry" / ".00_copy.png", (0, 0, 0), (256, 256))
    (root / "angry" / "._00_angry.png").write_bytes(b"AppleDouble metadata")
    out = tmp_path / "out"
    manifest = prepare_rafd(root, out, expressions=EXPRESSIONS, person_pattern=r"^(\d\d)_", workers=1)
    assert manifest["counts"]["total"] == 6
    assert manifest["skipped"] == []
    table = pd.read_csv(out / "labels.csv", dtype=str)
    assert set(table.expression) == {"angry", "happy"}  # "Happy" matched case-insensitively


def test_unknown_expression_folder(tmp_path: Path) -> None:
    root = _expression_tree(tmp_path / "faces", {"angry": 2, "smiling": 2})
    with pytest.raises(DataError, match=r"folder 'smiling' in .* is not an expression; expected folders named "
                                        r"angry, happy, neutral"):
        prepare_rafd(root, tmp_path / "out", expressions=EXPRESSIONS, person_pattern=r"^(\d\d)_")


def test_train_folder_among_expressions(tmp_path: Path) -> None:
    root = _expression_tree(tmp_path / "faces", {"angry": 2, "train": 2})
    with pytest.raises(DataError, match=r"contains the folders angry, train; expected either exactly train/ and test/"):
        prepare_rafd(root, tmp_path / "out", expressions=EXPRESSIONS, person_pattern=r"^(\d\d)_")


def test_split_folder_without_expressions(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    _expression_tree(root / "train", {"angry": 2})
    _colour_image(root / "test" / "00_x.png", (1, 1, 1), (256, 256))
    with pytest.raises(DataError, match=r"test contains image files \(00_x.png\) beside expression folders"):
        prepare_rafd(root, tmp_path / "out", expressions=EXPRESSIONS)


def test_images_beside_folders(tmp_path: Path) -> None:
    root = _expression_tree(tmp_path / "faces", {"angry": 2})
    _colour_image(root / "00_stray.png", (1, 1, 1), (256, 256))
    with pytest.raises(DataError, match="contains both image files .* and folders"):
        prepare_rafd(root, tmp_path / "out", expressions=EXPRESSIONS)


def test_flat_names_must_be_rafd(tmp_path: Path) -> None:
    _colour_image(tmp_path / "faces" / "portrait.jpg", (1, 1, 1), (256, 256))
    with pytest.raises(DataError, match=r"portrait.jpg in .* is not a RaFD file name \(Rafd<angle>_<person>"):
        prepare_rafd(tmp_path / "faces", tmp_path / "out", expressions=EXPRESSIONS)


def test_flat_unknown_expression(tmp_path: Path) -> None:
    _colour_image(tmp_path / "faces" / "Rafd090_01_Caucasian_female_contemptuous_frontal.jpg", (1, 1, 1))
    with pytest.raises(DataError, match="expression 'contemptuous' is not in data.expressions"):
        prepare_rafd(tmp_path / "faces", tmp_path / "out", expressions=EXPRESSIONS)


def test_person_needed_for_split(tmp_path: Path) -> None:
    root = _expression_tree(tmp_path / "faces", {"angry": 2})
    with pytest.raises(DataError, match="cannot read the person from 00_angry.png; .* pass --person-pattern"):
        prepare_rafd(root, tmp_path / "out", expressions=EXPRESSIONS)


def test_one_person_cannot_be_split(tmp_path: Path) -> None:
    root = _expression_tree(tmp_path / "faces", {"angry": 1, "happy": 1})
    with pytest.raises(DataError, match="needs at least 2 people, found 1"):
        prepare_rafd(root, tmp_path / "out", expressions=EXPRESSIONS, person_pattern=r"^(\d\d)_")


def test_rafd_broken_images_over_share(tmp_path: Path) -> None:
    root = _expression_tree(tmp_path / "faces", {"angry": 4, "happy": 4})
    (root / "angry" / "01_angry.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"1 of 8 images .* first: angry/01_angry.png: cannot read image"):
        prepare_rafd(root, out, expressions=EXPRESSIONS, person_pattern=r"^(\d\d)_", max_bad_share=0.1)
    assert not out.exists()
    manifest = prepare_rafd(root, out, expressions=EXPRESSIONS, person_pattern=r"^(\d\d)_", max_bad_share=0.2)
    assert [item["file"] for item in manifest["skipped"]] == ["angry/01_angry.png"]
    assert json.loads((out / "manifest.json").read_text())["counts"]["total"] == 7


@pytest.mark.parametrize(
    ("box", "message"),
    [((70, 170, 610), "4 values"), ((70, 170, 610, 700), "must be square"), ((-1, 170, 539, 710), "inside")],
)
def test_face_box_validation(box: tuple[int, ...], message: str) -> None:
    with pytest.raises(DataError, match=message):
        validate_face_box(box)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    stored = Image.new("RGB", (256, 256), (230, 20, 20))
    stored.paste((20, 20, 230), (0, 128, 256, 256))  # top half red, bottom half blue, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation 6: rotate 90 degrees clockwise for display
    for person in ("01", "02"):
        (root / "happy").mkdir(parents=True, exist_ok=True)
        stored.save(root / "happy" / f"{person}_rotated.jpg", exif=exif, quality=95)
    out = tmp_path / "out"
    prepare_rafd(root, out, expressions=EXPRESSIONS, person_pattern=r"^(\d\d)_", workers=1)
    result = np.load(out / "images.npy")[0].astype(int)
    expected = np.asarray(stored.transpose(Image.Transpose.ROTATE_270).resize((128, 128), Image.BILINEAR)).astype(int)
    assert np.abs(result - expected).mean() < 2  # JPEG noise only, largest at the colour edge
    assert result[64, 20, 2] > 150  # left half blue after rotation
    assert result[64, 108, 0] > 150  # right half red


def test_invalid_person_pattern(tmp_path: Path) -> None:
    root = _expression_tree(tmp_path / "faces", {"angry": 2})
    with pytest.raises(DataError, match=r"--person-pattern '\^\(x' is not a valid regular expression"):
        prepare_rafd(root, tmp_path / "out", expressions=EXPRESSIONS, person_pattern="^(x")
