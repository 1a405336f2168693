"""Prepare CelebA: parse the attribute file, split train/test, and crop the aligned 178x218 images.

The attribute file may be the original ``list_attr_celeba.txt`` (image count on line 1, the attribute names on
line 2, then ``<file> <values of 1 or -1>`` separated by runs of spaces, LF or CRLF endings) or the CSV variant
that Kaggle distributes (``image_id,5_o_Clock_Shadow,...``). A value of 1 is a positive label, -1 or 0 a negative one.
"""

from __future__ import annotations

import csv
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from stargan_core.errors import DataError
from stargan_core.images import IMAGE_SUFFIXES, center_crop_resize, is_image_file
from stargan_core.prepare.common import (
    FORMAT_VERSION, IMAGES_FILE, LABELS_FILE, MANIFEST_FILE, MISSING, check_bad_share, check_output, closest_names,
    decode_images, default_workers, inputs_checksum, log_skipped, reorder_rows, sha256_file, split_order,
    staged_output, write_labels_csv, write_manifest,
)

log = logging.getLogger(__name__)

EXPECTED_LAYOUT = (
    "expected list_attr_celeba.txt (line 1: the image count, line 2: the attribute names, then one line "
    "'<file> <one value of 1, -1 or 0 per attribute>' per image) or the CSV layout 'image_id,<attribute names>'"
)
ID_COLUMNS = ("image_id", "image", "file", "filename", "file_name")
TEST_PARTITION = 2  # list_eval_partition.txt: 0 = train, 1 = validation, 2 = test


@dataclass(frozen=True)
class AttributeTable:
    """The parsed attribute file: every attribute name, and one 0/1 row per image file."""

    source: Path
    layout: str  # "txt" (original), "txt-without-count" or "csv"
    names: tuple[str, ...]
    files: tuple[str, ...]
    values: np.ndarray  # uint8 (N, len(names)), 1 = attribute present


@dataclass(frozen=True)
class CenterCrop:
    """CelebA crop: a centred square of ``crop_size`` (clipped to the short side), resized to ``image_size``."""

    crop_size: int
    image_size: int

    def apply(self, image: Image.Image) -> tuple[Image.Image, str]:
        return center_crop_resize(image, self.crop_size, self.image_size), "center"


# ---------------------------------------------------------------------------------------------------------------
# Attribute and partition files


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Return (1-based line number, text) for every non-blank line; CRLF endings and a UTF-8 BOM are accepted."""
    if not path.is_file():
        raise DataError(f"attribute file {path} not found; pass --attr-file with the path of list_attr_celeba.txt")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); {EXPECTED_LAYOUT}") from exc
    return [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


VALUES = {"1": 1, "-1": 0, "0": 0}  # attribute value token -> 0/1 label


def _parse_values(path: Path, number: int, parts: Sequence[str], names: tuple[str, ...]) -> list[int]:
    """Return the 0/1 labels of one row (1 positive; -1 or 0 negative), naming the line of an invalid value."""
    try:
        return [VALUES[token] for token in parts]
    except KeyError:
        column = next(k for k, token in enumerate(parts) if token not in VALUES)
        raise DataError(
            f"{path}, line {number}: value {parts[column]!r} for {names[column]} is invalid; "
            f"expected 1 (present), -1 or 0 (absent)"
        ) from None


def _check_row_length(path: Path, number: int, parts: Sequence[str], names: tuple[str, ...]) -> None:
    if len(parts) != len(names) + 1:
        raise DataError(
            f"{path}, line {number}: expected a file name and {len(names)} values, found {len(parts) - 1} values"
        )


def _looks_like_names(parts: Sequence[str]) -> bool:
    """Return True when no token is an attribute value or an image file name, as on a line of attribute names."""
    return bool(parts) and not any(token in VALUES or token.lower().endswith(IMAGE_SUFFIXES) for token in parts)


def _check_names_not_on_line_2(path: Path, lines: list[tuple[int, str]]) -> None:
    """Raise DataError when line 1 has taken the place of the count line, so the names are on the next line.

    Line 1 is then neither a count nor the names: the next line looks like names, and the row after it has one
    value per name on that line.
    """
    if len(lines) < 3:
        return
    second, third = lines[1][1].split(), lines[2][1].split()
    names = second[1:] if second and second[0].lower() in ID_COLUMNS else second
    if _looks_like_names(second) and len(third) == len(names) + 1:
        raise DataError(
            f"{path}, line {lines[0][0]}: {lines[0][1][:60]!r} is neither a count nor attribute names, and line "
            f"{lines[1][0]} contains {len(names)} attribute names; replace line {lines[0][0]} with the image count "
            f"or delete it"
        )


def _parse_text_layout(path: Path, lines: list[tuple[int, str]]) -> tuple[str, tuple[str, ...], list]:
    first = lines[0][1].split()
    count: int | None = None
    layout = "txt"
    if len(first) == 1 and first[0].isdigit():
        count = int(first[0])
        if len(lines) < 2:
            raise DataError(f"{path} has a count line but no attribute names; {EXPECTED_LAYOUT}")
        header_number, header_line = lines[1]
        body = lines[2:]
    elif first and not any(token.lower().endswith(IMAGE_SUFFIXES) for token in first) and not all(
        token.lstrip("-").isdigit() for token in first
    ):
        # The count line is missing, so line 1 contains the attribute names.
        _check_names_not_on_line_2(path, lines)
        header_number, header_line = lines[0]
        body = lines[1:]
        layout = "txt-without-count"
        log.info("%s has no count line; reading the attribute names from line %d", path, header_number)
    else:
        raise DataError(f"{path}, line {lines[0][0]}: {lines[0][1][:60]!r} is neither a count nor attribute names; "
                        f"{EXPECTED_LAYOUT}")
    names = tuple(header_line.split())
    if names and names[0].lower() in ID_COLUMNS:
        names = names[1:]
    if not names:
        raise DataError(f"{path}, line {header_number}: no attribute names; {EXPECTED_LAYOUT}")
    rows = []
    for number, line in body:
        parts = line.split()
        _check_row_length(path, number, parts, names)
        rows.append((number, parts[0], _parse_values(path, number, parts[1:], names)))
    if count is not None and count != len(rows):
        log.warning("%s: line 1 gives %d images but the file lists %d; using the %d listed",
                    path, count, len(rows), len(rows))
    return layout, names, rows


def _parse_csv_layout(path: Path, lines: list[tuple[int, str]]) -> tuple[str, tuple[str, ...], list]:
    header_number, header_line = lines[0]
    header = [cell.strip() for cell in next(csv.reader([header_line]))]
    if len(header) < 2 or header[0].lower() not in ID_COLUMNS:
        raise DataError(
            f"{path}, line {header_number}: the CSV header must start with image_id, found {header[0]!r}; "
            f"{EXPECTED_LAYOUT}"
        )
    names = tuple(header[1:])
    rows = []
    for number, line in lines[1:]:
        parts = [cell.strip() for cell in next(csv.reader([line]))]
        _check_row_length(path, number, parts, names)
        rows.append((number, parts[0], _parse_values(path, number, parts[1:], names)))
    return "csv", names, rows


def parse_attribute_file(path: str | Path) -> AttributeTable:
    """Parse a CelebA attribute file in the original text layout or the CSV variant.

    Raises DataError naming the file and line for a wrong number of values, an invalid value or a repeated file.
    """
    path = Path(path)
    lines = _read_lines(path)
    if not lines:
        raise DataError(f"{path} is empty; {EXPECTED_LAYOUT}")
    if "," in lines[0][1]:
        layout, names, rows = _parse_csv_layout(path, lines)
    else:
        layout, names, rows = _parse_text_layout(path, lines)
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise DataError(f"{path}: attribute names {repeated} appear more than once in the header")
    seen: dict[str, int] = {}
    for number, name, _ in rows:
        if name in seen:
            raise DataError(f"{path}, line {number}: {name} is already listed on line {seen[name]}")
        seen[name] = number
    files = tuple(name for _, name, _ in rows)
    values = np.array([row_values for _, _, row_values in rows], dtype=np.uint8).reshape(len(rows), len(names))
    return AttributeTable(path, layout, names, files, values)


def select_attributes(table: AttributeTable, selected: Sequence[str]) -> np.ndarray:
    """Return the 0/1 columns of ``selected`` in that order; an unknown name raises DataError with the closest names."""
    index = {name: i for i, name in enumerate(table.names)}
    for name in selected:
        if name not in index:
            close = closest_names(name, table.names)
            hint = f"closest valid names: {', '.join(close)}" if close else f"valid names: {', '.join(table.names)}"
            raise DataError(f"attribute {name!r} is not in {table.source}; {hint} (names are case-sensitive)")
    return table.values[:, [index[name] for name in selected]]


def parse_partition_file(path: str | Path) -> dict[str, int]:
    """Parse list_eval_partition.txt (``<file> <0|1|2>`` per line) into a file-to-partition mapping."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"partition file {path} not found; pass --partition-file with list_eval_partition.txt")
    partitions: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        parts = line.replace(",", " ").split()
        if not parts or (number == 1 and parts[0].lower() in ID_COLUMNS):
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"{path}, line {number}: expected '<file> <0, 1 or 2>', found {line.strip()[:60]!r}")
        partitions[parts[0]] = int(parts[1])
    return partitions


# ---------------------------------------------------------------------------------------------------------------
# Splits


def shuffled_rows(num_rows: int, seed: int) -> np.ndarray:
    """Return the row order of ``random.Random(seed).shuffle`` over ``num_rows`` rows.

    The StarGAN release (Choi et al., 2018) calls ``random.seed(1234); random.shuffle(lines)`` on the attribute
    rows and tests on the first rows, so seed 1234 on the full file reproduces its test set. A private Random
    instance keeps other code from changing the order.
    """
    order = list(range(num_rows))
    random.Random(seed).shuffle(order)
    return np.asarray(order, dtype=np.int64)


def choose_test_rows(usable: np.ndarray, test_size: int, seed: int) -> np.ndarray:
    """Return a boolean test mask: the first ``test_size`` usable rows in the seeded shuffled order.

    The order covers every row of the attribute file, so an unreadable image only hands its place to the next row.
    """
    available = int(usable.sum())
    if test_size >= available:
        raise DataError(
            f"test size {test_size} leaves no training images among {available} usable images; "
            f"lower --test-size (data.test_size)"
        )
    order = shuffled_rows(usable.size, seed)
    chosen = order[usable[order]][:test_size]
    test = np.zeros(usable.size, dtype=bool)
    test[chosen] = True
    return test


def partition_test_rows(
    files: Sequence[str], usable: np.ndarray, partitions: dict[str, int], source: Path
) -> np.ndarray:
    """Return a boolean test mask from the official partition: 2 is test; train (0) and validation (1) train."""
    missing = [name for name in files if name not in partitions]
    if missing:
        raise DataError(
            f"{source} has no row for {len(missing)} images of the attribute file, first {missing[0]}; "
            f"use the list_eval_partition.txt that matches the attribute file"
        )
    test = np.array([partitions[name] == TEST_PARTITION for name in files]) & usable
    if not test.any():
        raise DataError(
            f"{source} puts none of the usable images in the test partition (2); "
            f"leave out --partition-file to draw a seeded test set of --test-size images"
        )
    if test.sum() == usable.sum():
        raise DataError(f"{source} puts every usable image in the test partition (2); nothing is left to train on")
    return test


# ---------------------------------------------------------------------------------------------------------------
# Preparation


def _count_unlabelled(image_dir: Path, labelled: set[str]) -> int:
    return sum(1 for path in image_dir.iterdir() if is_image_file(path) and path.name not in labelled)


def prepare_celeba(
    image_dir: str | Path,
    attr_file: str | Path,
    out: str | Path,
    *,
    selected_attrs: Sequence[str],
    crop_size: int = 178,
    image_size: int = 128,
    test_size: int = 2000,
    seed: int = 1234,
    partition_file: str | Path | None = None,
    max_bad_share: float = 0.01,
    workers: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Prepare CelebA into ``out`` (images.npy, labels.csv, manifest.json) and return the manifest.

    Every image listed in the attribute file is centre-cropped to ``crop_size`` and resized to ``image_size``.
    The test split is ``test_size`` images in seeded shuffled order, or partition 2 of ``partition_file``.
    """
    image_dir, attr_file, out = Path(image_dir), Path(attr_file), Path(out)
    if not image_dir.is_dir():
        raise DataError(f"image folder {image_dir} not found; pass --image-dir with the folder holding 000001.jpg")
    if crop_size <= 0 or image_size <= 0:
        raise DataError(f"crop size {crop_size} and image size {image_size} must be positive")
    check_output(out, force)  # fail before the slow steps, and again when publishing
    workers = workers or default_workers()
    table = parse_attribute_file(attr_file)
    labels = select_attributes(table, selected_attrs)
    partitions = parse_partition_file(partition_file) if partition_file is not None else None
    if not table.files:
        raise DataError(f"{attr_file} lists no images; {EXPECTED_LAYOUT}")
    log.info("%s: %d images, %d attributes (%s layout)", attr_file, len(table.files), len(table.names), table.layout)

    paths = [image_dir / name for name in table.files]
    exists = np.array([path.is_file() for path in paths])
    if not exists.any():
        raise DataError(
            f"none of the {len(paths)} images listed in {attr_file} (first {table.files[0]}) is in {image_dir}; "
            f"pass --image-dir with the folder that contains them"
        )
    skipped = [{"file": table.files[i], "reason": "file not found"} for i in np.flatnonzero(~exists)]
    check_bad_share(skipped, len(paths), max_bad_share)

    def test_mask(usable: np.ndarray) -> np.ndarray:
        if partitions is not None:
            return partition_test_rows(table.files, usable, partitions, Path(partition_file))
        return choose_test_rows(usable, test_size, seed)

    # Decode in the final row order, assuming every existing image is readable; reorder only if some are not.
    planned_test = test_mask(exists)
    planned = split_order(np.where(planned_test, "test", "train"))
    planned = planned[exists[planned]]
    crop = CenterCrop(crop_size, image_size)
    with staged_output(out, force) as staging:
        scratch = staging / "decoded.npy"
        results = decode_images(
            [paths[i] for i in planned], [table.files[i] for i in planned], scratch, crop, workers, "prepare celeba",
        )
        digests = {table.files[i]: MISSING for i in np.flatnonzero(~exists)}
        usable = np.zeros(len(paths), dtype=bool)
        for result in results:
            row = int(planned[result.row])
            digests[table.files[row]] = result.sha256
            if result.error is None:
                usable[row] = True
            else:
                skipped.append({"file": table.files[row], "reason": result.error})
        skipped.sort(key=lambda item: item["file"])
        log_skipped(skipped)
        check_bad_share(skipped, len(paths), max_bad_share)
        test = test_mask(usable)
        final = split_order(np.where(test, "test", "train"))
        final = final[usable[final]]
        position = {int(row): i for i, row in enumerate(planned)}
        reorder_rows(scratch, np.array([position[int(row)] for row in final], dtype=np.int64), staging / IMAGES_FILE)

        split_names = np.where(test[final], "test", "train")
        write_labels_csv(
            staging / LABELS_FILE,
            ["file", "split", *selected_attrs],
            [[table.files[row], split, *labels[row].tolist()] for row, split in zip(final, split_names)],
        )
        label_digests = {attr_file.name: sha256_file(attr_file)}
        if partition_file is not None:
            label_digests[Path(partition_file).name] = sha256_file(Path(partition_file))
        manifest = {
            "format_version": FORMAT_VERSION,
            "dataset": "celeba",
            "label_names": list(selected_attrs),
            "image_size": image_size,
            "crop": {"rule": "center", "crop_size": crop_size, "resize": "bilinear, antialiased (Pillow)"},
            "counts": {
                "total": int(final.size),
                **{split: int((split_names == split).sum()) for split in ("train", "test")},
            },
            "domains": {
                split: {
                    name: int(labels[final[split_names == split], k].sum()) for k, name in enumerate(selected_attrs)
                }
                for split in ("train", "test")
            },
            "split": (
                {"rule": "partition file", "file": Path(partition_file).name,
                 "test": "partition 2", "train": "partitions 0 and 1 (validation joins train)"}
                if partition_file is not None
                else {"rule": "seeded shuffle (random.Random)", "seed": seed, "test_size": test_size}
            ),
            "inputs": {
                "sha256": inputs_checksum(digests, label_digests),
                "attribute_file": attr_file.name,
                "attribute_layout": table.layout,
                "labels_listed": len(table.files),
                "unlabelled_images_ignored": _count_unlabelled(image_dir, set(table.files)),
            },
            "skipped": skipped,
        }
        write_manifest(staging / MANIFEST_FILE, manifest)
    log.info("prepared %d CelebA images (%d train, %d test, %d skipped) in %s",
             final.size, manifest["counts"]["train"], manifest["counts"]["test"], len(skipped), out)
    return manifest
