"""Atomic file writes: a crash, a kill or a bad input never leaves a half-written output behind.

Writers that can stream go through ``atomic_write_file``: the bytes land in an anonymous
(``O_TMPFILE``) file that has no name until it is complete, so even ``kill -9`` leaves nothing
visible. ``exclusive=True`` links the result in without ever replacing a file, so of two processes
writing one output exactly one wins and the other gets ``OutputExistsError``.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO

from .errors import KdicError

TEMP_SUFFIX = ".tmp"  # named temp files are ".<name>.<random>.tmp" beside their target
_NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)  # O_TMPFILE unknown to this kernel/filesystem
_AT_FDCWD, _AT_EMPTY_PATH = -100, 0x1000  # <fcntl.h> on Linux
_EXISTS = "{} already exists (written meanwhile by another process?); not overwritten"


class OutputExistsError(KdicError):
    """An exclusive write found its target already there (created meanwhile by another process)."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], exclusive: bool = False) -> None:
    """Call ``write(tmp_path)`` for a hidden temp file beside ``path``, then move it onto ``path``.

    For writers that can only write to a path; a kill during ``write`` leaves the hidden temp file
    (``remove_stale_temps`` clears it), so prefer ``atomic_write_file`` for anything that streams.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        _commit(tmp, path, exclusive)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_file(path: str | os.PathLike, write: Callable[[BinaryIO], object], exclusive: bool = False) -> None:
    """Call ``write(f)`` with a binary file that becomes ``path`` only once ``write`` has returned.

    The file is anonymous until then where the filesystem allows (Linux ``O_TMPFILE``); elsewhere
    this falls back to ``atomic_write``'s named temp file.
    """
    path = Path(path)
    fd = _anonymous_file(path.parent)
    if fd is None:
        atomic_write(path, lambda tmp: _fill(tmp, write), exclusive)
        return
    try:
        with open(fd, "wb", closefd=False) as f:
            write(f)
        if not _link_anonymous(fd, path, exclusive):  # still, a kill while ``write`` ran left nothing
            atomic_write(path, lambda tmp: _copy_fd(fd, tmp), exclusive)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, exclusive: bool = False) -> None:
    atomic_write_file(path, lambda f: f.write(data), exclusive)


def remove_stale_temps(folder: Path) -> None:
    """Delete the named temp files killed writers left in ``folder`` (only while holding its lock)."""
    for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)


def lock_folder(folder: Path, what: str) -> IO[str]:
    """Lock ``folder`` for this process until the returned file is closed (or the process dies).

    Another process asking for the same lock gets one line naming the holder's pid, instead of two
    processes writing into one folder.
    """
    import fcntl

    lock = open(folder / ".lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise KdicError(f"{what} {folder} is in use by another process (pid {holder})") from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _commit(tmp: str | Path, path: Path, exclusive: bool) -> None:
    """Move the complete ``tmp`` onto ``path``; ``exclusive`` links it, so an existing file is never replaced."""
    if not exclusive:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(_EXISTS.format(path)) from None


def _anonymous_file(folder: Path) -> int | None:
    """A read-write ``O_TMPFILE`` descriptor in ``folder``, or None where that is not supported."""
    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o666)  # the umask applies, as for open()
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:
            return None
        raise


def _link_anonymous(fd: int, path: Path, exclusive: bool) -> bool:
    """Give the anonymous file ``fd`` the name ``path``; False where the kernel refuses to link it."""
    if exclusive:
        try:
            _link_fd(fd, path)
        except FileExistsError:
            raise OutputExistsError(_EXISTS.format(path)) from None
        except OSError:
            return False
        return True
    while True:  # link to a unique name, then rename: ``path`` is never missing or partial
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            _link_fd(fd, tmp)
            break
        except FileExistsError:
            continue
        except OSError:
            return False
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _link_fd(fd: int, target: Path) -> None:
    """``linkat`` the anonymous file ``fd`` to ``target``: through ``/proc/self/fd``, else (some sandboxes
    refuse that with EXDEV) by ``AT_EMPTY_PATH``, which older kernels allow only with CAP_DAC_READ_SEARCH."""
    try:
        os.link(f"/proc/self/fd/{fd}", target)
    except FileExistsError:
        raise
    except OSError:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.linkat(fd, b"", _AT_FDCWD, os.fsencode(target), _AT_EMPTY_PATH) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(target)) from None


def _fill(tmp: str, write: Callable[[BinaryIO], object]) -> None:
    with open(tmp, "wb") as f:
        write(f)


def _copy_fd(fd: int, tmp: str) -> None:
    with open(fd, "rb", closefd=False) as src, open(tmp, "wb") as dst:
        src.seek(0)
        shutil.copyfileobj(src, dst)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: str | os.PathLike, what: str, error: type[Exception]):
    """Parse a JSON file, raising ``error`` with one clear line if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: invalid JSON ({exc})") from None
