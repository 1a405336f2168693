"""`stargan download` against a local HTTP server on 127.0.0.1 with Range support and a connection that drops."""

from __future__ import annotations

import hashlib
import http.server
import io
import stat
import threading
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from components.cli import main as cli_main
from stargan_core.download import archive_name, download_celeba, extract_zip
from stargan_core.errors import DataError

ATTRIBUTES = "2\r\nMale Young \r\n000001.jpg  1 -1\r\n000002.jpg -1  1\r\n"


def _celeba_zip() -> bytes:
    """Build a zip with the layout of the StarGAN release archive: celeba/images/*.jpg and the attribute file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as bundle:
        bundle.writestr("celeba/list_attr_celeba.txt", ATTRIBUTES)
        for index in (1, 2):
            bundle.writestr(f"celeba/images/{index:06d}.jpg", bytes(range(256)) * 40 + bytes([index]))
        bundle.writestr("__MACOSX/celeba/._list_attr_celeba.txt", b"metadata")
    return buffer.getvalue()


class ArchiveServer(http.server.ThreadingHTTPServer):
    """Serves one byte string at any path; honours "Range: bytes=N-"; can drop the first response after N bytes."""

    def __init__(self, payload: bytes) -> None:
        super().__init__(("127.0.0.1", 0), ArchiveHandler)
        self.payload = payload
        self.cut_after: int | None = None  # bytes sent before the next response is dropped (once)
        self.honour_range = True
        self.ranges: list[str | None] = []
        self.error_status: int | None = None  # status of the next responses, if set
        self.error_count = 1_000_000  # how many responses get error_status

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/files/celeba.zip?dl=1"


class ArchiveHandler(http.server.BaseHTTPRequestHandler):
    server: ArchiveServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        payload = self.server.payload
        header = self.headers.get("Range")
        self.server.ranges.append(header)
        if self.server.error_status is not None and self.server.error_count > 0:
            self.server.error_count -= 1
            self.send_error(self.server.error_status)
            return
        start = 0
        if header and self.server.honour_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(payload):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(payload)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        else:
            self.send_response(200)
        body = payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.cut_after is not None:
            self.wfile.write(body[: self.server.cut_after])
            self.server.cut_after = None
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[ArchiveServer]:
    instance = ArchiveServer(_celeba_zip())
    thread = threading.Thread(target=instance.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield instance
    finally:
        instance.shutdown()
        instance.server_close()
        thread.join(timeout=5)


def test_archive_name() -> None:
    assert archive_name("https://www.dropbox.com/s/d1kjpkqklf0uw77/celeba.zip?dl=1") == "celeba.zip"
    assert archive_name("http://127.0.0.1:8000/") == "download"


def test_download_verifies_and_extracts(server: ArchiveServer, tmp_path: Path) -> None:
    md5 = hashlib.md5(server.payload).hexdigest()
    sha256 = hashlib.sha256(server.payload).hexdigest()
    record = download_celeba(tmp_path, url=server.url, md5=md5, sha256=sha256, backoff=0)
    assert Path(record["images_dir"]) == tmp_path / "celeba" / "images"
    assert Path(record["attr_file"]) == tmp_path / "celeba" / "list_attr_celeba.txt"
    assert (tmp_path / "celeba" / "list_attr_celeba.txt").read_bytes() == ATTRIBUTES.encode()
    assert sorted(p.name for p in (tmp_path / "celeba" / "images").iterdir()) == ["000001.jpg", "000002.jpg"]
    assert record["md5"] == md5
    assert not (tmp_path / ".partial").exists()  # archive and staging folder are removed
    assert not (tmp_path / "__MACOSX").exists()


def test_second_run_downloads_nothing(server: ArchiveServer, tmp_path: Path) -> None:
    download_celeba(tmp_path, url=server.url, backoff=0)
    requests = len(server.ranges)
    record = download_celeba(tmp_path, url=server.url, backoff=0)
    assert len(server.ranges) == requests
    assert Path(record["attr_file"]).is_file()


def test_checksum_mismatch_deletes_file(server: ArchiveServer, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"MD5 is [0-9a-f]{32}, expected 0{32}; the file was deleted"):
        download_celeba(tmp_path, url=server.url, md5="0" * 32, backoff=0)
    assert list((tmp_path / ".partial").iterdir()) == []
    assert not (tmp_path / "celeba").exists()


def test_interrupted_download_resumes_next_run(server: ArchiveServer, tmp_path: Path) -> None:
    server.cut_after = 5000
    with pytest.raises(DataError, match="stopped after 5000 bytes .* run the command again to resume"):
        download_celeba(tmp_path, url=server.url, retries=0, backoff=0)
    assert (tmp_path / ".partial" / "celeba.zip.part").stat().st_size == 5000
    record = download_celeba(tmp_path, url=server.url, md5=hashlib.md5(server.payload).hexdigest(), backoff=0)
    assert server.ranges == [None, "bytes=5000-"]
    assert Path(record["attr_file"]).read_bytes() == ATTRIBUTES.encode()


def test_interrupted_download_retries_in_one_run(server: ArchiveServer, tmp_path: Path) -> None:
    server.cut_after = 1234
    record = download_celeba(tmp_path, url=server.url, sha256=hashlib.sha256(server.payload).hexdigest(), backoff=0)
    assert server.ranges == [None, "bytes=1234-"]
    assert record["bytes"] == len(server.payload)


def test_server_without_range_restarts(server: ArchiveServer, tmp_path: Path) -> None:
    server.cut_after = 3000
    server.honour_range = False
    record = download_celeba(tmp_path, url=server.url, md5=hashlib.md5(server.payload).hexdigest(), backoff=0)
    assert record["bytes"] == len(server.payload)


def test_complete_partial_file_is_not_downloaded_again(server: ArchiveServer, tmp_path: Path) -> None:
    partial = tmp_path / ".partial" / "celeba.zip.part"
    partial.parent.mkdir()
    partial.write_bytes(server.payload)
    download_celeba(tmp_path, url=server.url, backoff=0)
    assert server.ranges == [f"bytes={len(server.payload)}-"]  # the server returns 416 and sends no bytes


def test_http_error_names_status(server: ArchiveServer, tmp_path: Path) -> None:
    server.error_status = 404
    with pytest.raises(DataError, match="HTTP 404 Not Found; check --url"):
        download_celeba(tmp_path, url=server.url, backoff=0)


def test_server_error_is_retried(server: ArchiveServer, tmp_path: Path) -> None:
    server.error_status = 503
    server.error_count = 1
    record = download_celeba(tmp_path, url=server.url, backoff=0)
    assert record["bytes"] == len(server.payload)
    assert len(server.ranges) == 2


def _zip_with(name: str, data: bytes = b"x", mode: int | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        bundle.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("member", "mode", "message"),
    [
        ("../evil.txt", None, "outside the output folder"),
        ("celeba/../../evil.txt", None, "outside the output folder"),
        ("/tmp/evil.txt", None, "outside the output folder"),
        ("C:/evil.txt", None, "outside the output folder"),
        ("link", stat.S_IFLNK | 0o777, "symbolic link"),
    ],
)
def test_unsafe_zip_rejected(tmp_path: Path, member: str, mode: int | None, message: str) -> None:
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip_with(member, b"/etc/passwd" if mode else b"x", mode))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match=message):
        extract_zip(archive, dest)
    assert not (tmp_path / "evil.txt").exists()
    assert [p.name for p in dest.rglob("*") if p.is_file()] == []


def test_not_a_zip(tmp_path: Path) -> None:
    archive = tmp_path / "page.zip"
    archive.write_text("<html>quota exceeded</html>")
    with pytest.raises(DataError, match="is not a zip archive .* check that --url returns the file itself"):
        extract_zip(archive, tmp_path)


def test_cli_download_celeba(server: ArchiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["download", "celeba", "--out", str(tmp_path), "--url", server.url]) == 0
    output = capsys.readouterr().out
    assert f"images: {tmp_path / 'celeba' / 'images'}" in output
    assert f"attributes: {tmp_path / 'celeba' / 'list_attr_celeba.txt'}" in output


def test_cli_download_celeba_bad_checksum(server: ArchiveServer, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["download", "celeba", "--out", str(tmp_path), "--url", server.url, "--sha256", "ab" * 32]) == 2
    assert "SHA256 is" in capsys.readouterr().err


def test_cli_download_rafd_explains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["download", "rafd"]) == 1
    output = capsys.readouterr().out
    assert "https://rafd.socsci.ru.nl/" in output
    assert "stargan prepare rafd --image-dir DIR" in output
    (tmp_path / "angry").mkdir()
    (tmp_path / "angry" / "Rafd090_01_Caucasian_female_angry_frontal.jpg").write_bytes(b"")
    assert cli_main(["download", "rafd", "--out", str(tmp_path)]) == 0
    assert "1 RaFD photos found" in capsys.readouterr().out


def test_archive_left_by_failed_extraction_is_reused(server: ArchiveServer, tmp_path: Path) -> None:
    (tmp_path / "celeba").mkdir()  # an existing folder stops the extraction
    with pytest.raises(DataError, match="celeba already exists; remove it"):
        download_celeba(tmp_path, url=server.url, backoff=0)
    (tmp_path / "celeba").rmdir()
    record = download_celeba(tmp_path, url=server.url, md5=hashlib.md5(server.payload).hexdigest(), backoff=0)
    assert server.ranges == [None]  # the second run downloaded nothing
    assert Path(record["attr_file"]).is_file()


def test_broken_archive_deleted_and_fetched_again(server: ArchiveServer, tmp_path: Path) -> None:
    good = server.payload
    server.payload = b"<html>quota exceeded</html>"
    message = r"is not a zip archive .* The download was deleted; run the command again to fetch it anew"
    with pytest.raises(DataError, match=message):
        download_celeba(tmp_path, url=server.url, backoff=0)
    assert not (tmp_path / ".partial").exists()
    server.payload = good  # the server's file was fixed
    record = download_celeba(tmp_path, url=server.url, backoff=0)
    assert record["sha256"] == hashlib.sha256(good).hexdigest()
    assert Path(record["attr_file"]).is_file()
    assert server.ranges == [None, None]  # the second run started from byte 0


def test_damaged_member_deletes_archive(server: ArchiveServer, tmp_path: Path) -> None:
    good = server.payload
    damaged = bytearray(good)
    offset = good.index(bytes(range(256)))  # inside the stored data of the first image
    damaged[offset] ^= 0xFF
    server.payload = bytes(damaged)
    with pytest.raises(DataError, match=r"cannot be extracted .*Bad CRC-32.* The download was deleted"):
        download_celeba(tmp_path, url=server.url, backoff=0)
    assert not (tmp_path / ".partial").exists()
    assert not (tmp_path / "celeba").exists()
    server.payload = good
    assert Path(download_celeba(tmp_path, url=server.url, backoff=0)["images_dir"]).is_dir()


def test_cached_file_that_is_not_zip_is_replaced(server: ArchiveServer, tmp_path: Path) -> None:
    (tmp_path / ".partial").mkdir()
    (tmp_path / ".partial" / "celeba.zip").write_text("<html>quota exceeded</html>")
    record = download_celeba(tmp_path, url=server.url, backoff=0)
    assert server.ranges == [None]
    assert record["bytes"] == len(server.payload)
