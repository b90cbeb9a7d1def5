"""Atomic file writes: a crash or a full disk never leaves a half-written file at the final path.

Data go to a temporary `.NAME.*.part` file in the same folder, are flushed and fsync'ed, then
renamed over the final name (atomic on POSIX) and the folder is fsync'ed. A failure to write is a
`StorageError` naming the path and the cause (disk full, permission denied); the final path keeps
its previous content.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from visionstudy.errors import StorageError

HINTS = {
    errno.ENOSPC: "the disk is full; free space or write elsewhere (--out / --runs-dir)",
    errno.EDQUOT: "the disk quota is exceeded; free space or write elsewhere (--out / --runs-dir)",
    errno.EACCES: "permission denied; choose a folder you can write (--out / --runs-dir)",
    errno.EPERM: "operation not permitted; choose a folder you can write (--out / --runs-dir)",
    errno.EROFS: "the file system is read-only; choose another folder (--out / --runs-dir)",
}


def storage_error(path: Path, exc: OSError) -> StorageError:
    hint = HINTS.get(exc.errno or 0, "check the folder and the disk")
    return StorageError(f"cannot write {path}: {exc.strerror or exc} — {hint}")


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(path, exc) from None
    return path


def file_mode() -> int:
    """0666 less the process umask: what `open()` would give, so colleagues sharing a runs folder
    can read what we write (mkstemp alone gives 0600 whatever the umask)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_all(f: object, data: bytes) -> None:
    """The write itself (a seam for fault-injection tests)."""
    f.write(data)  # type: ignore[attr-defined]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    ensure_dir(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        sync_dir(path.parent)
    except OSError as exc:
        raise storage_error(path, exc) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def sync_dir(folder: Path) -> None:
    """fsync a folder so a rename inside it survives a power cut (best effort off POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_partials(folder: Path) -> int:
    """Delete `.*.part` files a killed writer left behind; they are never read."""
    count = 0
    for part in folder.glob(".*.part") if folder.is_dir() else []:
        part.unlink(missing_ok=True)
        count += 1
    return count


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


@contextlib.contextmanager
def writing(folder: Path) -> Iterator[None]:
    """Any OSError while writing into `folder` (a full disk, a read-only folder) becomes one
    `StorageError` naming the file and the fix."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        raise storage_error(Path(exc.filename) if exc.filename else folder, exc) from None
