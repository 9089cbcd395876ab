"""Resumable, verified downloads of the catalogued data sets into a cache folder.

A file is written to ``NAME.part`` and renamed only once its size and SHA-256 match the catalogue,
so a cache never holds a half-written or wrong file under its real name. A broken connection is
retried from where it stopped (HTTP ``Range``); an interrupted command resumes the same way when run
again. Archives are unpacked member by member after checking that no member escapes the target
folder, into a temporary folder that is renamed into place at the end.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from ..errors import KdicError
from ..fileio import atomic_write_bytes
from .catalog import DatasetSource, RemoteFile

CHUNK = 1 << 20
RETRIES = 4
TIMEOUT_S = 60
MANIFEST = "kdic-dataset.json"


def default_cache() -> Path:
    """``$KDIC_DATA``, else ``~/.cache/kdic/datasets``."""
    return Path(os.environ.get("KDIC_DATA") or Path.home() / ".cache" / "kdic" / "datasets")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _transfer(url: str, part: Path, quiet: bool) -> None:
    """Append the rest of ``url`` to ``part`` (from its current size; from 0 if the server ignores Range)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        if have and response.status != 206:  # no resume support: start over
            have = 0
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        with (
            open(part, "ab" if have else "wb") as out,
            tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name[:-5], disable=quiet) as bar,
        ):
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise http.client.IncompleteRead(b"", total - part.stat().st_size)


def fetch_file(remote: RemoteFile, folder: Path, quiet: bool = False) -> tuple[Path, str]:
    """``folder/remote.name``, downloaded (resuming a ``.part``) and verified; (path, its SHA-256)."""
    target = folder / remote.name
    if target.is_file():  # only ever renamed into place once verified
        digest = _sha256(target)
        if remote.sha256 is None or digest == remote.sha256:
            return target, digest
    part = folder / f"{remote.name}.part"
    for attempt in range(RETRIES):
        try:
            _transfer(remote.url, part, quiet)
            break
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code not in (408, 429, 500, 502, 503, 504):
                raise KdicError(f"cannot download {remote.url}: HTTP {exc.code} {exc.reason}") from None
            if attempt == RETRIES - 1:
                got = part.stat().st_size if part.exists() else 0
                raise KdicError(
                    f"download of {remote.url} broke off after {got} bytes ({exc}); run the command again to resume"
                ) from None
    size = part.stat().st_size
    if remote.size is not None and size != remote.size:
        part.unlink()
        raise KdicError(f"{remote.url}: got {size} bytes, expected {remote.size}; the partial file was removed")
    digest = _sha256(part)
    if remote.sha256 is not None and digest != remote.sha256:
        part.unlink()
        raise KdicError(
            f"{remote.url}: SHA-256 {digest} does not match the expected {remote.sha256}; the file was removed"
        )
    os.replace(part, target)
    return target, digest


def _safe_members(names: list[str], root: Path) -> None:
    for name in names:
        resolved = (root / name).resolve()
        if not resolved.is_relative_to(root.resolve()):
            raise KdicError(f"archive member {name[:80]!r} would be written outside {root}; refusing the archive")


def unpack(archive: Path, into: Path) -> None:
    """Unpack a zip or tar archive into ``into`` (via a temporary folder renamed at the end)."""
    staging = into.with_name(into.name + ".unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                _safe_members(z.namelist(), staging)
                z.extractall(staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                _safe_members(t.getnames(), staging)
                t.extractall(staging, filter="data")
        else:
            raise KdicError(f"{archive} is neither a zip nor a tar archive")
        for junk in staging.glob("__MACOSX"):
            shutil.rmtree(junk)
        if into.exists():
            shutil.rmtree(into)
        staging.rename(into)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def fetch_dataset(source: DatasetSource, cache: Path | None = None, quiet: bool = False) -> Path:
    """Download, verify and unpack ``source`` into ``cache/NAME``; the folder of its images.

    A set that is already complete (its manifest written) is not fetched again.
    """
    folder = (cache or default_cache()) / source.name
    images = folder / source.images
    if source.manual is not None:
        raise KdicError(source.manual.format(folder=folder))
    done = dataset_folder(source, cache)
    if done is not None:
        return done
    downloads = folder / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    digests = {}
    for remote in source.files:
        path, digests[remote.name] = fetch_file(remote, downloads if len(source.files) == 1 else folder, quiet)
        if len(source.files) == 1 and path.suffix.lower() in (".zip", ".tar", ".tgz", ".gz", ".bz2"):
            unpack(path, folder / "unpacked")
    if len(source.files) == 1 and (folder / "unpacked").is_dir():
        images = folder / "unpacked" / source.images
    if not images.is_dir():
        raise KdicError(f"{source.name}: expected its images in {images}, which the download did not produce")
    manifest = {
        "name": source.name,
        "licence": source.licence,
        "images": str(images.relative_to(folder)),
        "files": [
            {"url": r.url, "name": r.name, "sha256": digests[r.name], "pinned": r.sha256 is not None}
            for r in source.files
        ],
    }
    atomic_write_bytes(folder / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return images


def dataset_folder(source: DatasetSource, cache: Path | None = None) -> Path | None:
    """The images folder of a fetched set, or None when it is not (completely) in the cache."""
    folder = (cache or default_cache()) / source.name
    if not (folder / MANIFEST).is_file():
        return None
    return folder / json.loads((folder / MANIFEST).read_text())["images"]
