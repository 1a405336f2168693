"""Prepare RaFD or another expression dataset: find the labels, split by person, and crop each face.

Three input layouts are read:

* flat: the RaFD download, labels in names such as ``Rafd090_01_Caucasian_female_angry_frontal.jpg``
  (camera angle, person, ethnicity, gender, expression, gaze);
* one folder per expression (``angry/``, ``happy/``, ...), split by person here;
* ``train/`` and ``test/``, each with one folder per expression; this split is kept.

Raw RaFD photos (681x1024) are cropped to a fixed face box; any other image is centre-cropped (see ``RafdCrop``).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from stargan_core.errors import DataError
from stargan_core.images import center_crop_resize, crop_resize, is_image_file
from stargan_core.prepare.common import (
    FORMAT_VERSION, IMAGES_FILE, LABELS_FILE, MANIFEST_FILE, check_bad_share, check_output, closest_names,
    decode_images, default_workers, inputs_checksum, log_skipped, reorder_rows, split_order, staged_output,
    write_labels_csv, write_manifest,
)

log = logging.getLogger(__name__)

RAFD_NAME = re.compile(
    r"^Rafd(?P<angle>\d{3})_(?P<person>\d+)_(?P<ethnicity>[A-Za-z]+)_(?P<gender>[A-Za-z]+)"
    r"_(?P<expression>[A-Za-z]+)_(?P<gaze>[A-Za-z]+)$"
)
RAFD_NAME_LAYOUT = "Rafd<angle>_<person>_<ethnicity>_<gender>_<expression>_<gaze>.jpg"

# Raw RaFD photos are 681x1024 (width x height). In the frontal (camera 090) sample photos the face is centred
# horizontally (x about 340), the eyes lie at y 400-415, the chins at y 650-690 and the hair tops at y 120-160.
# The square box below (540 px, centre x 340, y 440) keeps the whole face, the chin and most of the hair.
RAFD_PHOTO_SIZE = (681, 1024)
RAFD_FACE_BOX = (70, 170, 610, 710)  # left, top, right, bottom in a 681x1024 photo
ASPECT_TOLERANCE = 0.01  # relative difference of width/height that still counts as a raw RaFD photo

# StarGAN (Choi et al., 2018) trains on 4,824 RaFD images: 67 people x 8 expressions x 3 gazes x 3 camera
# angles. These are the angles whose photos show both eyes; the profile cameras 000 and 180 are left out.
RAFD_CAMERA_ANGLES = ("045", "090", "135")
SPLIT_FOLDERS = ("train", "test")


@dataclass(frozen=True)
class ExpressionImage:
    """One input image with its labels; ``split`` is set only when the input has train/ and test/ folders."""

    path: Path
    file: str  # path relative to the image folder, with "/" separators
    expression: str
    person: str
    split: str | None = None


@dataclass(frozen=True)
class RafdCrop:
    """RaFD crop: raw photos go through the face box, every other image through a centred square crop.

    A photo with the 681:1024 aspect ratio of raw RaFD photos is cropped to ``face_box`` (given for 681x1024 and
    scaled to the photo's width) and resized to ``crop_size``, which gives the usual 256x256 face crop. That crop,
    or any other image, is then centre-cropped to ``crop_size`` (clipped to the short side) and resized to
    ``image_size``, so an image that is already a 256x256 face crop passes through the first step unchanged.
    """

    face_box: tuple[int, int, int, int]
    crop_size: int
    image_size: int

    def apply(self, image: Image.Image) -> tuple[Image.Image, str]:
        box = face_box_for(image.width, image.height, self.face_box)
        if box is None:
            return center_crop_resize(image, self.crop_size, self.image_size), "center"
        face = crop_resize(image, box, self.crop_size)
        return center_crop_resize(face, self.crop_size, self.image_size), "face box"


def validate_face_box(box: Sequence[int]) -> tuple[int, int, int, int]:
    """Return ``box`` as a tuple after checking that it is a square inside a 681x1024 photo."""
    if len(box) != 4:
        raise DataError(f"face box {list(box)} must have 4 values: left, top, right, bottom")
    left, top, right, bottom = (int(value) for value in box)
    width, height = RAFD_PHOTO_SIZE
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise DataError(
            f"face box {list(box)} must lie inside a {width}x{height} photo, with left < right and top < bottom"
        )
    if right - left != bottom - top:
        raise DataError(
            f"face box {list(box)} is {right - left}x{bottom - top}; it must be square so the face is not stretched"
        )
    return left, top, right, bottom


def face_box_for(width: int, height: int, face_box: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    """Return ``face_box`` scaled from 681x1024 to this size, or None unless the size has the 681:1024 RaFD ratio."""
    reference_width, reference_height = RAFD_PHOTO_SIZE
    aspect = (width / height) / (reference_width / reference_height)
    if abs(aspect - 1.0) > ASPECT_TOLERANCE:
        return None
    scale = width / reference_width
    left, top = round(face_box[0] * scale), round(face_box[1] * scale)
    side = min(round((face_box[2] - face_box[0]) * scale), width - left, height - top)
    return left, top, left + side, top + side


# ---------------------------------------------------------------------------------------------------------------
# Finding images and labels


def _visible_entries(folder: Path) -> list[Path]:
    """Return the entries of ``folder`` sorted by name, without hidden files and folders (names starting with '.')."""
    return sorted((entry for entry in folder.iterdir() if not entry.name.startswith(".")), key=lambda p: p.name)


def _canonical_expressions(folder: Path, names: list[str], expressions: Sequence[str]) -> dict[str, str]:
    """Map folder names to expression names case-insensitively; raise DataError for any other folder."""
    canonical = {expression.lower(): expression for expression in expressions}
    mapping: dict[str, str] = {}
    for name in names:
        expression = canonical.get(name.lower())
        if expression is None:
            close = closest_names(name, expressions)
            hint = f" (closest: {', '.join(close)})" if close else ""
            raise DataError(
                f"folder {name!r} in {folder} is not an expression{hint}; expected folders named "
                f"{', '.join(expressions)} (any case), or train/ and test/ holding such folders; "
                f"set data.expressions to use other names"
            )
        if expression in mapping.values():
            other = next(key for key, value in mapping.items() if value == expression)
            raise DataError(f"folders {other!r} and {name!r} in {folder} are both the expression {expression!r}")
        mapping[name] = expression
    return mapping


def _expression_of_name(name: str, word: str, expressions: Sequence[str]) -> str:
    """Return the expression that the RaFD file name ``name`` gives as ``word``, matched case-insensitively."""
    canonical = {expression.lower(): expression for expression in expressions}
    if word.lower() not in canonical:
        raise DataError(
            f"{name}: expression {word!r} is not in data.expressions ({', '.join(expressions)}); add it to "
            f"data.expressions and set model.c2_dim, or remove the images of that expression"
        )
    return canonical[word.lower()]


def _person_of(name: str, person_pattern: re.Pattern[str] | None) -> str | None:
    """Return the person id of a file name from ``person_pattern`` (first group) or the RaFD name, else None."""
    if person_pattern is not None:
        match = person_pattern.search(name)
        return match.group(1) if match else None
    match = RAFD_NAME.match(Path(name).stem)
    return match.group("person") if match else None


def _camera_angle(name: str) -> str | None:
    match = RAFD_NAME.match(Path(name).stem)
    return match.group("angle") if match else None


def _images_in(folder: Path) -> list[Path]:
    entries = _visible_entries(folder)
    ignored = [entry.name for entry in entries if not is_image_file(entry)]
    if ignored:
        log.info("%s: ignoring %d entries that are not images (%s)", folder, len(ignored), ", ".join(ignored[:3]))
    return [entry for entry in entries if is_image_file(entry)]


def _expression_folder_images(
    folder: Path, expressions: Sequence[str], split: str | None
) -> list[tuple[Path, str, str | None]]:
    """Return (path, expression, split) for every image in the expression sub-folders of ``folder``."""
    entries = _visible_entries(folder)
    folders = [entry for entry in entries if entry.is_dir()]
    stray = [entry.name for entry in entries if is_image_file(entry)]
    if stray:
        raise DataError(
            f"{folder} contains image files ({', '.join(stray[:3])}) beside expression folders; "
            f"move them into the folder of their expression"
        )
    if not folders:
        raise DataError(f"{folder} has no expression folders; expected folders named {', '.join(expressions)}")
    mapping = _canonical_expressions(folder, [entry.name for entry in folders], expressions)
    found = []
    for entry in folders:
        for path in _images_in(entry):
            found.append((path, mapping[entry.name], split))
    return found


def find_expression_images(
    image_dir: str | Path,
    expressions: Sequence[str],
    person_pattern: str | None = None,
    camera_angles: Sequence[str] | None = RAFD_CAMERA_ANGLES,
) -> tuple[str, list[ExpressionImage], dict[str, int]]:
    """Find the images and labels of an expression dataset in any of the three layouts.

    Returns the layout name ("flat", "expression folders" or "train/test folders"), the images sorted by file,
    and the number of RaFD photos left out per camera angle.
    """
    root = Path(image_dir)
    if not root.is_dir():
        raise DataError(f"image folder {root} not found; pass --image-dir with the RaFD folder")
    try:
        pattern = re.compile(person_pattern) if person_pattern else None
    except re.error as exc:
        raise DataError(f"--person-pattern {person_pattern!r} is not a valid regular expression ({exc})") from exc
    if pattern is not None and pattern.groups < 1:
        raise DataError(f"--person-pattern {person_pattern!r} needs one group, for example '^(\\d+)_'")
    entries = _visible_entries(root)
    folders = [entry for entry in entries if entry.is_dir()]
    files = [entry for entry in entries if is_image_file(entry)]
    lowered = {entry.name.lower(): entry for entry in folders}

    found: list[tuple[Path, str, str | None]] = []
    if folders and files:
        raise DataError(
            f"{root} contains both image files ({files[0].name}) and folders ({folders[0].name}); use one layout: "
            f"RaFD photos directly in the folder, one folder per expression, or train/ and test/"
        )
    if files:
        layout = "flat"
        for path in files:
            match = RAFD_NAME.match(path.stem)
            if match is None:
                raise DataError(
                    f"{path.name} in {root} is not a RaFD file name ({RAFD_NAME_LAYOUT}); put images with other "
                    f"names into one folder per expression"
                )
            found.append((path, _expression_of_name(path.name, match.group("expression"), expressions), None))
    elif set(lowered) & set(SPLIT_FOLDERS):
        if set(lowered) != set(SPLIT_FOLDERS):
            names = ", ".join(entry.name for entry in folders)
            raise DataError(
                f"{root} contains the folders {names}; expected either exactly train/ and test/ "
                f"(each with one folder per expression) or only expression folders ({', '.join(expressions)})"
            )
        layout = "train/test folders"
        for split in SPLIT_FOLDERS:
            found.extend(_expression_folder_images(lowered[split], expressions, split))
    elif folders:
        layout = "expression folders"
        found.extend(_expression_folder_images(root, expressions, None))
    else:
        raise DataError(f"no images found in {root}; expected RaFD photos or one folder per expression")

    images: list[ExpressionImage] = []
    excluded: Counter[str] = Counter()
    for path, expression, split in found:
        angle = _camera_angle(path.name)
        if camera_angles is not None and angle is not None and angle not in camera_angles:
            excluded[angle] += 1
            continue
        person = _person_of(path.name, pattern)
        if person is None and split is None:
            raise DataError(
                f"cannot read the person from {path.name}; the split by person needs it: pass --person-pattern "
                f"with one group that matches the person id, for example '^(\\d\\d)' for 0121b01.jpg"
            )
        images.append(ExpressionImage(path, path.relative_to(root).as_posix(), expression, person or "", split))
    images.sort(key=lambda image: image.file)
    if not images:
        raise DataError(
            f"no images left in {root} after keeping camera angles {', '.join(camera_angles or ())}; "
            f"set --camera-angles to the angles you have"
        )
    return layout, images, dict(sorted(excluded.items()))


# ---------------------------------------------------------------------------------------------------------------
# Split by person


def choose_test_people(
    people: Sequence[str], expressions: Sequence[str], test_share: float, seed: int
) -> set[str]:
    """Return the people held out for testing: ``round(test_share * people)``, at least 1 and leaving 1 for training.

    The choice is stratified by expression: people are added one at a time, each time the one whose images bring
    the test split's expression counts closest (L1 distance) to ``test_share`` of the overall counts. Ties go to
    the earlier person in an order shuffled by ``numpy.random.default_rng(seed)``.
    """
    unique = sorted(set(people))
    if len(unique) < 2:
        raise DataError(
            f"splitting by person needs at least 2 people, found {len(unique)} ({', '.join(unique)}); "
            f"add images of more people or provide train/ and test/ folders"
        )
    count = min(max(1, round(test_share * len(unique))), len(unique) - 1)
    names = sorted(set(expressions))
    column = {name: k for k, name in enumerate(names)}
    per_person = {person: np.zeros(len(names)) for person in unique}
    for person, expression in zip(people, expressions):
        per_person[person][column[expression]] += 1
    target = test_share * sum(per_person.values())
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    chosen: list[str] = []
    counts = np.zeros(len(names))
    for _ in range(count):
        remaining = [person for person in order if person not in chosen]
        best = min(remaining, key=lambda person: np.abs(counts + per_person[person] - target).sum())
        chosen.append(best)
        counts += per_person[best]
    return set(chosen)


def _split_images(images: list[ExpressionImage], test_share: float, seed: int) -> list[str]:
    """Return the split of each image: the given folder split, or a split by person."""
    if images[0].split is not None:
        splits = [image.split or "" for image in images]
        for split in SPLIT_FOLDERS:
            if split not in splits:
                raise DataError(f"the {split}/ folder has no images; put at least one image in each split")
        train_people = {image.person for image in images if image.split == "train" and image.person}
        shared = sorted({image.person for image in images if image.split == "test"} & train_people)
        if shared:
            log.warning("the given train/ and test/ folders share %d people (%s); keeping the split as given",
                        len(shared), ", ".join(shared[:5]))
        return splits
    test_people = choose_test_people([i.person for i in images], [i.expression for i in images], test_share, seed)
    return ["test" if image.person in test_people else "train" for image in images]


# ---------------------------------------------------------------------------------------------------------------
# Preparation


def _domain_counts(images: Sequence[ExpressionImage], splits: Sequence[str], expressions: Sequence[str]) -> dict:
    return {
        split: {
            expression: sum(1 for image, s in zip(images, splits) if s == split and image.expression == expression)
            for expression in expressions
        }
        for split in SPLIT_FOLDERS
    }


def prepare_rafd(
    image_dir: str | Path,
    out: str | Path,
    *,
    expressions: Sequence[str],
    crop_size: int = 256,
    image_size: int = 128,
    test_share: float = 0.1,
    seed: int = 1234,
    face_box: Sequence[int] = RAFD_FACE_BOX,
    person_pattern: str | None = None,
    camera_angles: Sequence[str] | None = RAFD_CAMERA_ANGLES,
    max_bad_share: float = 0.01,
    workers: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Prepare RaFD or another expression dataset into ``out`` (images.npy, labels.csv, manifest.json).

    Returns the manifest. The split keeps given train/ and test/ folders. Otherwise ``test_share`` of the people
    are held out, stratified by expression. Unreadable images are skipped, and the other images keep their split.
    """
    out = Path(out)
    if crop_size <= 0 or image_size <= 0:
        raise DataError(f"crop size {crop_size} and image size {image_size} must be positive")
    if not 0.0 < test_share < 1.0:
        raise DataError(f"test share {test_share} must be between 0 and 1 (exclusive); set data.rafd_test_share")
    check_output(out, force)  # fail before the slow steps, and again when publishing
    box = validate_face_box(face_box)
    workers = workers or default_workers()
    layout, images, excluded = find_expression_images(image_dir, expressions, person_pattern, camera_angles)
    missing = [e for e in expressions if e not in {image.expression for image in images}]
    log.info("%s: %d images in %s layout%s", image_dir, len(images), layout,
             f"; no images for {', '.join(missing)}" if missing else "")
    splits = np.array(_split_images(images, test_share, seed))
    planned = split_order(splits)

    crop = RafdCrop(box, crop_size, image_size)
    with staged_output(out, force) as staging:
        scratch = staging / "decoded.npy"
        results = decode_images(
            [images[i].path for i in planned], [images[i].file for i in planned], scratch, crop, workers,
            "prepare rafd",
        )
        skipped = [{"file": images[planned[r.row]].file, "reason": r.error} for r in results if r.error is not None]
        skipped.sort(key=lambda item: item["file"])
        log_skipped(skipped)
        check_bad_share(skipped, len(images), max_bad_share)
        good = [r.row for r in results if r.error is None]
        kept = [images[planned[row]] for row in good]
        kept_splits = [str(splits[planned[row]]) for row in good]
        for split in SPLIT_FOLDERS:
            if split not in kept_splits:
                examples = ", ".join(item["file"] for item in skipped[:3])
                raise DataError(f"every {split} image is unreadable (first: {examples}); fix those images and rerun")
        reorder_rows(scratch, np.asarray(good, dtype=np.int64), staging / IMAGES_FILE)

        write_labels_csv(
            staging / LABELS_FILE,
            ["file", "split", "expression", "person"],
            [[image.file, split, image.expression, image.person] for image, split in zip(kept, kept_splits)],
        )
        crops = Counter(r.crop for r in results if r.error is None)
        manifest = {
            "format_version": FORMAT_VERSION,
            "dataset": "rafd",
            "label_names": list(expressions),
            "image_size": image_size,
            "crop": {
                "rule": "face box for 681:1024 photos, else center",
                "face_box": list(box),
                "face_box_reference_size": list(RAFD_PHOTO_SIZE),
                "crop_size": crop_size,
                "resize": "bilinear, antialiased (Pillow)",
                "images_per_rule": dict(sorted(crops.items())),
            },
            "counts": {"total": len(kept), **{s: kept_splits.count(s) for s in SPLIT_FOLDERS}},
            "domains": _domain_counts(kept, kept_splits, expressions),
            "people": {s: len({i.person for i, k in zip(kept, kept_splits) if k == s}) for s in SPLIT_FOLDERS},
            "split": (
                {"rule": "given train/ and test/ folders"}
                if layout == "train/test folders"
                else {"rule": "by person, stratified by expression", "seed": seed, "test_share": test_share}
            ),
            "inputs": {
                "sha256": inputs_checksum({images[planned[r.row]].file: r.sha256 for r in results}, {}),
                "layout": layout,
                "images_found": len(images),
                "camera_angles": list(camera_angles) if camera_angles is not None else "all",
                "excluded_by_camera_angle": excluded,
            },
            "skipped": skipped,
        }
        write_manifest(staging / MANIFEST_FILE, manifest)
    log.info("prepared %d expression images (%d train, %d test, %d skipped) in %s",
             len(kept), manifest["counts"]["train"], manifest["counts"]["test"], len(skipped), out)
    return manifest
