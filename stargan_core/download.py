"""Download CelebA with HTTP Range resume and checksum verification, and explain how to obtain RaFD.

The download goes to ``OUT/.partial/<name>.part``. A rerun after an interruption requests only the
missing bytes (``Range: bytes=<size>-``). A file whose checksum does not match is deleted, so the next run starts
afresh, and so is a file that turns out not to be a usable zip archive. The zip archive is extracted member by
member after checking that no member leaves ``OUT``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from stargan_core.errors import DataError

log = logging.getLogger(__name__)

# The CelebA archive of the StarGAN release (Choi et al., 2018): celeba/images/*.jpg (202,599 aligned 178x218
# images) and celeba/list_attr_celeba.txt. The release publishes no checksum, so none is checked by default.
CELEBA_URL = "https://www.dropbox.com/s/d1kjpkqklf0uw77/celeba.zip?dl=1"
RAFD_URL = "https://rafd.socsci.ru.nl/"
PARTIAL_DIR = ".partial"
MARKER_FILE = ".celeba-download.json"
ATTRIBUTE_FILES = ("list_attr_celeba.txt", "list_attr_celeba.csv")
CHUNK_BYTES = 1 << 20
RAFD_INSTRUCTIONS = f"""\
RaFD (Radboud Faces Database) cannot be downloaded automatically: its licence allows non-commercial
research use after registration. Request access at {RAFD_URL} (register, accept the terms of use,
and download the images from the link you receive).

Then put the images in one of these layouts and run `stargan prepare rafd --image-dir DIR`:
  DIR/Rafd090_01_Caucasian_female_angry_frontal.jpg ...   (the photos as downloaded, labels from the names)
  DIR/angry/*.jpg, DIR/happy/*.jpg, ...                   (one folder per expression)
  DIR/train/<expression>/*.jpg and DIR/test/<expression>/*.jpg   (a split of your own, kept as given)
"""


class ArchiveError(DataError):
    """A downloaded file that is not a zip archive, is damaged, or contains an unsafe member."""


def archive_name(url: str) -> str:
    """Return the file name in a URL's path ("celeba.zip" for the default URL), or "download" when it has none."""
    name = PurePosixPath(urllib.parse.urlparse(url).path).name
    return name if re.fullmatch(r"[\w.-]+", name or "") else "download"


def file_digest(path: Path, algorithm: str) -> str:
    """Return the hex digest of a file with a hashlib algorithm such as "md5" or "sha256"."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """Return (first byte, total size) of a Content-Range header such as "bytes 100-199/200" or "bytes */200"."""
    match = re.fullmatch(r"bytes (\d+|\*)(?:-\d+)?/(\d+|\*)", (header or "").strip())
    if match is None:
        return None, None
    first, total = match.groups()
    return (None if first == "*" else int(first)), (None if total == "*" else int(total))


def _copy_body(response: http.client.HTTPResponse, handle, expected: int | None, progress: tqdm) -> int:
    """Copy the response body to ``handle`` and return its length; raise IncompleteRead when it ends early."""
    written = 0
    while True:
        block = response.read(CHUNK_BYTES)
        if not block:
            break
        handle.write(block)
        written += len(block)
        progress.update(len(block))
    if expected is not None and written < expected:
        raise http.client.IncompleteRead(b"", expected - written)
    return written


def fetch(url: str, dest: Path, *, retries: int = 3, timeout: float = 60.0, backoff: float = 2.0) -> Path:
    """Download ``url`` to ``dest``, resuming from the bytes already in ``dest`` with an HTTP Range request.

    A dropped connection is retried ``retries`` times, each resuming where the last stopped, after
    ``backoff * 2**attempt`` seconds (at most 60). A server that ignores Range (status 200) restarts the file.
    Raises DataError when the download cannot finish; the partial file stays for the next run.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        have = dest.stat().st_size if dest.exists() else 0
        headers = {"User-Agent": "stargan-pipeline"}
        if have:
            headers["Range"] = f"bytes={have}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                expected = int(length) if length is not None else None
                if have and response.status == 206:
                    first, total = _content_range(response.headers.get("Content-Range"))
                    if first != have:
                        raise DataError(f"{url}: server resumed at byte {first}, not {have}; delete {dest} and rerun")
                    mode = "ab"
                    log.info("resuming %s at byte %d", url, have)
                else:
                    if have:
                        log.info("%s ignores Range requests; downloading from the start", url)
                    have, mode = 0, "wb"
                    total = expected
                with dest.open(mode) as handle, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, desc=dest.name.removesuffix(".part"),
                    disable=None, leave=False,
                ) as progress:
                    _copy_body(response, handle, expected, progress)
            return dest
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:
                _, total = _content_range(exc.headers.get("Content-Range"))
                if total == have:
                    return dest  # the file was already complete
                log.warning("%s: %d bytes on disk do not fit the server's file; downloading from the start", dest, have)
                dest.unlink()
                continue
            if exc.code < 500 or attempt >= retries:
                raise DataError(f"download of {url} failed: HTTP {exc.code} {exc.reason}; check --url") from exc
            error: Exception = exc
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            if attempt >= retries:
                size = dest.stat().st_size if dest.exists() else 0
                raise DataError(
                    f"download of {url} stopped after {size} bytes ({exc}); run the command again to resume"
                ) from exc
            error = exc
        attempt += 1
        delay = min(backoff * 2 ** attempt, 60.0)
        log.warning("download of %s interrupted (%s); retry %d of %d in %.0f s", url, error, attempt, retries, delay)
        time.sleep(delay)


def verify_checksum(path: Path, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise DataError, after deleting ``path``, when its MD5 or SHA-256 differs from the expected hex digest."""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if not expected:
            continue
        actual = file_digest(path, algorithm)
        if actual.lower() != expected.strip().lower():
            path.unlink()
            raise DataError(
                f"{path.name}: {algorithm.upper()} is {actual}, expected {expected}; the file was deleted. "
                f"Check --{algorithm} and --url, then run again to download it afresh"
            )
        log.info("%s: %s verified", path.name, algorithm.upper())


def _member_path(name: str) -> PurePosixPath:
    """Return the relative path of a zip member, raising ArchiveError for absolute paths or '..' parts."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ArchiveError(f"zip member {name!r} would be written outside the output folder; the archive is unsafe")
    return path


def extract_zip(archive: Path, dest: Path) -> list[Path]:
    """Extract ``archive`` into ``dest`` and return the top-level paths created.

    Every member is checked first: absolute paths, '..' parts and symbolic links raise ArchiveError before anything
    is written, and so do a file that is not a zip archive and a member that fails to decompress. Members go to a
    staging folder first and move into ``dest`` only when all of them were extracted. An existing path in ``dest``
    with the name of a top-level member raises DataError.
    """
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"{archive} is not a zip archive ({exc}); check that --url returns the file itself") from exc
    staging = dest / PARTIAL_DIR / "extract"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with bundle:
        members = []
        for info in bundle.infolist():
            path = _member_path(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ArchiveError(f"zip member {info.filename!r} is a symbolic link; the archive is unsafe")
            if path.parts and path.parts[0] != "__MACOSX":
                members.append((info, path))
        tops = sorted({path.parts[0] for _, path in members if path.parts})
        for top in tops:
            if (dest / top).exists():
                raise DataError(f"{dest / top} already exists; remove it or choose another --out")
        for info, path in members:
            target = staging.joinpath(*path.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with bundle.open(info) as source, target.open("wb") as handle:
                    shutil.copyfileobj(source, handle, CHUNK_BYTES)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                # zipfile raises BadZipFile for a CRC mismatch or a bad header, EOFError for a member cut short,
                # and NotImplementedError for an unsupported compression method.
                raise ArchiveError(
                    f"{archive}: zip member {info.filename!r} cannot be extracted ({exc}); the archive is damaged"
                ) from exc
    for top in tops:
        os.replace(staging / top, dest / top)
    shutil.rmtree(staging)
    return [dest / top for top in tops]


def locate_celeba(root: Path) -> tuple[Path, Path]:
    """Return (image folder, attribute file) under ``root``: the folder with most .jpg files, and list_attr_celeba."""
    attribute_files = sorted(
        path for name in ATTRIBUTE_FILES for path in root.rglob(name) if PARTIAL_DIR not in path.parts
    )
    if not attribute_files:
        raise DataError(f"no {' or '.join(ATTRIBUTE_FILES)} found under {root}; check that --url is the CelebA archive")
    counts: dict[Path, int] = {}
    for path in root.rglob("*.jpg"):
        if PARTIAL_DIR not in path.parts:
            counts[path.parent] = counts.get(path.parent, 0) + 1
    if not counts:
        raise DataError(f"no .jpg images found under {root}; check that --url is the CelebA archive")
    images = max(sorted(counts), key=lambda folder: counts[folder])
    return images, attribute_files[0]


def download_celeba(
    out: str | Path,
    url: str = CELEBA_URL,
    md5: str | None = None,
    sha256: str | None = None,
    retries: int = 3,
    backoff: float = 2.0,
) -> dict[str, Any]:
    """Download and extract the CelebA archive into ``out``; return the image folder, attribute file and digests.

    A second run with the same URL finds the marker file ``out/.celeba-download.json`` and downloads nothing.
    An archive that fails extraction stays in ``out/.partial`` for the next run unless it raised ArchiveError:
    then it is deleted, so that the next run downloads it again.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER_FILE
    if marker.is_file():
        record = json.loads(marker.read_text(encoding="utf-8"))
        images_dir, attr_file = record.get("images_dir"), record.get("attr_file")
        if record.get("url") == url and images_dir and attr_file and Path(images_dir).is_dir() \
                and Path(attr_file).is_file():
            log.info("%s was already downloaded into %s", url, out)
            return record
    name = archive_name(url)
    archive = out / PARTIAL_DIR / name
    if archive.is_file() and not zipfile.is_zipfile(archive):
        log.warning("%s is not a zip archive; deleting it and downloading %s again", archive, url)
        archive.unlink()
    if archive.is_file():
        # A complete archive from a run that failed while extracting: check it again instead of downloading.
        verify_checksum(archive, md5=md5, sha256=sha256)
    else:
        partial = archive.with_name(f"{name}.part")
        log.info("downloading %s to %s", url, partial)
        fetch(url, partial, retries=retries, backoff=backoff)
        verify_checksum(partial, md5=md5, sha256=sha256)
        os.replace(partial, archive)
    record: dict[str, Any] = {
        "url": url,
        "file": name,
        "bytes": archive.stat().st_size,
        "md5": file_digest(archive, "md5"),
        "sha256": file_digest(archive, "sha256"),
    }
    log.info("extracting %s (%d bytes, MD5 %s)", name, record["bytes"], record["md5"])
    try:
        extract_zip(archive, out)
    except ArchiveError as exc:
        # Keeping the file would make every rerun fail on it, even after the server's file was fixed.
        shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)
        raise ArchiveError(f"{exc}. The download was deleted; run the command again to fetch it anew") from exc
    archive.unlink()
    shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)
    images, attributes = locate_celeba(out)
    record.update(images_dir=str(images), attr_file=str(attributes))
    marker.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def count_rafd_images(folder: str | Path) -> int:
    """Return the number of files named like RaFD photos (Rafd*.jpg) under ``folder``, hidden ones excluded."""
    root = Path(folder)
    if not root.is_dir():
        return 0
    return sum(
        1 for path in root.rglob("Rafd*")
        if path.suffix.lower() in (".jpg", ".jpeg") and not any(p.startswith(".") for p in path.relative_to(root).parts)
    )
