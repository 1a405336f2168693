"""Shared steps of data preparation: parallel decoding into a memory map, output files, and the staged output folder.

A prepared folder contains ``images.npy`` (uint8, N x size x size x 3, RGB), ``labels.csv`` and ``manifest.json``
(see ``stargan_core.datasets``). Preparation writes everything into a hidden temporary folder next to the output
and renames it into place at the end, so a failed run leaves no partial output.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import logging
import math
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from stargan_core.errors import DataError
from stargan_core.images import decode_rgb, to_uint8_hwc

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
IMAGES_FILE = "images.npy"
LABELS_FILE = "labels.csv"
MANIFEST_FILE = "manifest.json"
MISSING = "missing"  # digest recorded for an input file that does not exist
SKIPPED_LOG_LIMIT = 20  # maximum number of skipped images logged one by one (manifest.json lists all of them)
# A Python object repr such as "<_io.BytesIO object at 0x7f8afbffc5e0>", which Pillow puts into some messages.
OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")


class CropRule(Protocol):
    """A picklable crop-and-resize rule that worker processes apply to each decoded RGB image."""

    image_size: int

    def apply(self, image: Image.Image) -> tuple[Image.Image, str]:
        """Return the image_size x image_size result and the name of the crop used."""
        ...


@dataclass(frozen=True)
class DecodeResult:
    """The outcome for one input image: its row in the memory map, the SHA-256 of its bytes, and any error."""

    row: int
    sha256: str
    error: str | None = None
    crop: str = ""


def default_workers() -> int:
    """Return the number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def closest_names(name: str, valid: Sequence[str], count: int = 3) -> list[str]:
    """Return up to ``count`` valid names closest to ``name``, comparing case-insensitively."""
    lowered = {v.lower(): v for v in valid}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=count, cutoff=0.4)
    return [lowered[m] for m in matches]


def sha256_file(path: Path) -> str:
    """Return the SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inputs_checksum(image_digests: dict[str, str], label_digests: dict[str, str]) -> str:
    """Return one SHA-256 over every input: ``name<TAB>digest`` lines of label files, then images, sorted by name."""
    digest = hashlib.sha256()
    for group in (label_digests, image_digests):
        for name in sorted(group):
            digest.update(f"{name}\t{group[name]}\n".encode("utf-8"))
    return digest.hexdigest()


def check_bad_share(skipped: Sequence[dict[str, str]], total: int, max_bad_share: float) -> None:
    """Raise DataError when more than ``max_bad_share`` of ``total`` input images were skipped."""
    if total == 0 or len(skipped) / total <= max_bad_share:
        return
    examples = "; ".join(f"{item['file']}: {item['reason']}" for item in skipped[:3])
    raise DataError(
        f"{len(skipped)} of {total} images are missing or unreadable ({len(skipped) / total:.1%}), more than "
        f"data.max_bad_share {max_bad_share:.1%}; first: {examples}. Fix or remove those files, "
        f"or raise --max-bad-share"
    )


def log_skipped(skipped: Sequence[dict[str, str]]) -> None:
    """Log a warning for each of the first SKIPPED_LOG_LIMIT skipped images, then one line counting the rest."""
    for item in skipped[:SKIPPED_LOG_LIMIT]:
        log.warning("skipped %s: %s", item["file"], item["reason"])
    if len(skipped) > SKIPPED_LOG_LIMIT:
        log.warning("skipped %d more images, not listed here", len(skipped) - SKIPPED_LOG_LIMIT)


# ---------------------------------------------------------------------------------------------------------------
# Decoding into a memory map


def decode_error_reason(exc: DataError, name: str) -> str:
    """Return the reason why image ``name`` is unreadable, without the file name and the same on every run.

    Pillow's messages can contain the repr of its in-memory file, whose address changes from run to run, so
    such reprs are removed and an unknown format gets a fixed text.
    """
    if isinstance(exc.__cause__, UnidentifiedImageError):
        return "cannot read image (not a recognised image format)"
    # decode_rgb prefixes the message with the file name; the manifest stores the name separately.
    return OBJECT_REPR.sub("", str(exc).removeprefix(f"{name}: "))


def _decode_chunk(images_path: str, crop: CropRule, items: Sequence[tuple[int, str, str]]) -> list[DecodeResult]:
    """Decode, crop and store one chunk of (row, path, name) items into rows of the .npy memory map."""
    array = np.load(images_path, mmap_mode="r+")
    results = []
    try:
        for row, path, name in items:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                results.append(DecodeResult(row, MISSING, f"cannot read file ({exc.strerror or exc})"))
                continue
            digest = hashlib.sha256(data).hexdigest()
            try:
                image, crop_name = crop.apply(decode_rgb(data, name))
            except DataError as exc:
                results.append(DecodeResult(row, digest, decode_error_reason(exc, name)))
                continue
            array[row] = to_uint8_hwc(image)
            results.append(DecodeResult(row, digest, None, crop_name))
        array.flush()
    finally:
        del array
    return results


def _pool_context() -> multiprocessing.context.BaseContext:
    # Fork on Linux: the workers inherit the imported modules instead of importing torch again (seconds per worker).
    # Preparation runs no torch code in the parent, so no torch thread pool exists at fork time.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def decode_images(
    paths: Sequence[Path],
    names: Sequence[str],
    images_path: Path,
    crop: CropRule,
    workers: int,
    description: str,
) -> list[DecodeResult]:
    """Decode every image into row i of a new uint8 .npy file of shape (N, size, size, 3), using ``workers`` processes.

    Rows of images that cannot be read stay zero and come back with an error. Results are in row order.
    """
    size = crop.image_size
    array = np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
    del array  # the workers open the file themselves
    items = [(row, str(path), name) for row, (path, name) in enumerate(zip(paths, names))]
    if not items:
        return []
    results: list[DecodeResult] = []
    progress = tqdm(total=len(items), desc=description, unit="img", disable=None, leave=False)
    try:
        if workers <= 1:
            for start in range(0, len(items), 64):
                chunk = items[start:start + 64]
                results.extend(_decode_chunk(str(images_path), crop, chunk))
                progress.update(len(chunk))
        else:
            # About eight chunks per worker balance the load; at most 256 images per chunk keep the bar moving.
            chunk_size = max(1, min(256, math.ceil(len(items) / (workers * 8))))
            with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
                futures = [
                    pool.submit(_decode_chunk, str(images_path), crop, items[start:start + chunk_size])
                    for start in range(0, len(items), chunk_size)
                ]
                try:
                    for future in as_completed(futures):
                        chunk_results = future.result()
                        results.extend(chunk_results)
                        progress.update(len(chunk_results))
                except BaseException:
                    # On an error or Ctrl-C, drop the chunks not started yet instead of decoding them first.
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        progress.close()
    results.sort(key=lambda result: result.row)
    return results


def reorder_rows(source_path: Path, rows: np.ndarray, dest_path: Path, block: int = 1024) -> None:
    """Write ``source[rows]`` to a new .npy file at ``dest_path``, then delete the source.

    When ``rows`` is the identity the source file is renamed instead, so the common case copies nothing.
    """
    source = np.load(source_path, mmap_mode="r")
    if rows.size == source.shape[0] and np.array_equal(rows, np.arange(rows.size)):
        del source
        os.replace(source_path, dest_path)
        return
    dest = np.lib.format.open_memmap(dest_path, mode="w+", dtype=np.uint8, shape=(rows.size,) + source.shape[1:])
    for start in range(0, rows.size, block):
        dest[start:start + block] = source[rows[start:start + block]]
    dest.flush()
    del dest, source
    source_path.unlink()


# ---------------------------------------------------------------------------------------------------------------
# Output files


def write_labels_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write labels.csv with LF line endings, so that preparing twice gives identical bytes on every platform."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write manifest.json, indented and with a final newline. It contains no time stamps, so reruns are identical."""
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def split_order(splits: Sequence[str]) -> np.ndarray:
    """Return row indices with every train row first, then every test row, each in input order.

    Contiguous splits let ``load_prepared`` memory-map a split as one slice.
    """
    labels = np.asarray(splits)
    return np.concatenate([np.flatnonzero(labels == "train"), np.flatnonzero(labels == "test")])


# ---------------------------------------------------------------------------------------------------------------
# Staged output folder


def check_output(out: Path, force: bool) -> None:
    """Raise DataError unless ``out`` is absent, an empty folder, or may be replaced because ``force`` is set."""
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; pass a folder path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise DataError(
            f"--out {out} already exists and is not empty; pass --force to replace it, or choose another folder"
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def staged_output(out: Path, force: bool) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``out``, and rename it to ``out`` when the block succeeds.

    On any exception the temporary folder is deleted, so ``out`` is never left half written. With ``force`` an
    existing ``out`` is first renamed aside and deleted only after the new folder is in place.
    """
    out = Path(out)
    check_output(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp creates mode 0700
        yield staging
        _publish(staging, out, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _publish(staging: Path, out: Path, force: bool) -> None:
    check_output(out, force)  # again: another process may have written there meanwhile
    if not out.exists():
        os.rename(staging, out)
        return
    if not any(out.iterdir()):
        out.rmdir()
        os.rename(staging, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, old / out.name)
    os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)
    log.info("replaced the previous contents of %s (--force)", out)
