"""``kdic datasets``: verified, resumable downloads, tested against a local HTTP server on 127.0.0.1
that serves files this test makes (this machine reaches no real data host)."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from kdic.cli import main
from kdic.datasets import DATASETS, DatasetSource, RemoteFile, dataset_folder, fetch_dataset, fetch_file
from kdic.datasets.download import unpack
from kdic.errors import KdicError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files``; a path in ``break_once`` closes the connection halfway the first time."""

    files: dict[str, bytes] = {}
    break_once: set[str] = set()
    ranges: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if "Range" in self.headers:
            self.ranges.append(self.headers["Range"])
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.path in self.break_once:
            self.break_once.discard(self.path)
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection breaks mid-file
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.files, _Handler.break_once, _Handler.ranges = {}, set(), []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _remote(url: str, path: str, body: bytes, sha: str | None = "right") -> RemoteFile:
    _Handler.files[path] = body
    digest = hashlib.sha256(body).hexdigest() if sha == "right" else sha
    return RemoteFile(url + path, Path(path).name, digest, len(body))


def test_a_broken_connection_resumes_with_a_range_request(server, tmp_path):
    remote = _remote(server, "/big.bin", PAYLOAD)
    _Handler.break_once.add("/big.bin")
    path, digest = fetch_file(remote, tmp_path, quiet=True)
    assert path.read_bytes() == PAYLOAD and digest == remote.sha256
    assert _Handler.ranges == [f"bytes={len(PAYLOAD) // 2}-"]  # the retry asked only for the missing half
    assert not (tmp_path / "big.bin.part").exists()


def test_a_wrong_checksum_is_refused_and_nothing_is_kept(server, tmp_path):
    remote = _remote(server, "/bad.bin", PAYLOAD, sha="0" * 64)
    with pytest.raises(KdicError, match="does not match the expected"):
        fetch_file(remote, tmp_path, quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_missing_files_are_one_clear_error(server, tmp_path):
    with pytest.raises(KdicError, match="HTTP 404"):
        fetch_file(RemoteFile(server + "/nothing.zip", "nothing.zip"), tmp_path, quiet=True)


def _zip(members: dict[str, bytes]) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        for name, body in members.items():
            z.writestr(name, body)
    return data.getvalue()


def test_a_zipped_set_is_fetched_unpacked_and_found_again(server, tmp_path):
    archive = _zip({"valid/a.png": b"png-a", "valid/b.png": b"png-b", "__MACOSX/valid/._a.png": b"junk"})
    source = DatasetSource("toy", "two images", "test data", (_remote(server, "/toy.zip", archive),), images="valid")
    images = fetch_dataset(source, tmp_path, quiet=True)
    assert sorted(p.name for p in images.iterdir()) == ["a.png", "b.png"]
    assert not (tmp_path / "toy" / "unpacked" / "__MACOSX").exists()
    assert dataset_folder(source, tmp_path) == images
    _Handler.files.clear()  # a complete set is not downloaded again
    assert fetch_dataset(source, tmp_path, quiet=True) == images


def test_an_archive_escaping_its_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(_zip({"../escaped.png": b"x"}))
    with pytest.raises(KdicError, match="outside"):
        unpack(archive, tmp_path / "into")
    assert not (tmp_path / "escaped.png").exists()


def test_the_catalogue_pins_what_is_published(capsys, tmp_path):
    kodak = DATASETS["kodak"]
    assert len(kodak.files) == 24 and sum(f.size for f in kodak.files) == 15_394_305
    assert all(f.sha256 and len(f.sha256) == 64 for f in kodak.files)
    assert main(["datasets", "list", "--cache", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert all(
        name in listing for name in ("kodak", "clic2020-professional-valid", "tecnick", "div2k-train", "flickr2w")
    )
    assert main(["datasets", "fetch", "flickr2w", "--cache", str(tmp_path), "--quiet"]) == 2  # manual: says where


def test_kodak_pins_match_the_shared_copy(kodak_dir):
    """The pinned hashes are those of the r0k.us files, which ../shared/data/kodak holds."""
    for remote in DATASETS["kodak"].files:
        assert hashlib.sha256((kodak_dir / remote.name).read_bytes()).hexdigest() == remote.sha256
