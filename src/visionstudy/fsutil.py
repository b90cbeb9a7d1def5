"""Atomic file writes, and the one rule for every path a user names for us to write.

Writes: a crash or a full disk never leaves a half-written file at the final path.

Data go to a temporary `.NAME.*.part` file in the same folder, are flushed and fsync'ed, then
renamed over the final name (atomic on POSIX) and the folder is fsync'ed. A failure to write is a
`StorageError` naming the path and the cause (disk full, permission denied); the final path keeps
its previous content.

Destinations (`export --out`, `report --out`, `datasets preview --out`, `predict --gradcam`,
trackers' `--log-dir`): `claim_output` refuses an existing file or folder that is not the command's
own earlier output (exit 2, the path and the fix: `--force` or another name) and proves the
destination writable before any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from visionstudy.errors import ConfigError, StorageError

HINTS = {
    errno.ENOSPC: "the disk is full; free space or write elsewhere (--out / --runs-dir)",
    errno.EDQUOT: "the disk quota is exceeded; free space or write elsewhere (--out / --runs-dir)",
    errno.EACCES: "permission denied; choose a folder you can write (--out / --runs-dir)",
    errno.EPERM: "operation not permitted; choose a folder you can write (--out / --runs-dir)",
    errno.EROFS: "the file system is read-only; choose another folder (--out / --runs-dir)",
    errno.EEXIST: "a file, not a folder, is in the way; choose another folder (--out / --runs-dir)",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another folder (--out / --runs-dir)",
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


def probe_writable(folder: Path) -> None:
    """Create and remove a file in `folder`: the only test that holds for root, read-only mounts
    and ACLs alike."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".visionstudy-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise storage_error(folder, exc) from None


def claim_output(path: Path, flag: str, *, own: Callable[[Path], bool], force: bool = False,
                 folder: bool = False) -> Path:
    """Check a destination the user named before any work: an existing path is taken only when
    it is this command's own earlier output (`own`), an empty folder, or with `force`; a folder
    destination is created now, a file's folder too; either must be writable."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if folder and not path.is_dir():
            raise ConfigError(f"{flag} {path}: exists and is not a folder; give a folder, e.g. {flag} "
                              f"{path.with_suffix('')}-out")
        if not folder and path.is_dir():
            raise ConfigError(f"{flag} {path}: is a folder; give the file to write, e.g. {flag} "
                              f"{path / 'out'}{path.suffix or ''}")
        empty = folder and not any(path.iterdir())
        if not (empty or force or own(path)):
            what = "folder" if folder else "file"
            raise ConfigError(f"{flag} {path}: the {what} exists and is not this command's output; it is "
                              f"kept. Choose another {flag}, or pass --force to write there anyway")
    probe_writable(ensure_dir(path if folder else path.parent))
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
