"""Getting dataset files: where to look, checksums, atomic downloads, safe archive extraction.

Where to look, in order: `data.data_dir` in the config, `--data-dir` on the command line, the
`VISIONSTUDY_DATA_DIR` environment variable, the folders of the system's dataset packages (Debian's
`dataset-fashion-mnist` puts the official files in /usr/share/datasets/fashion-mnist), then the cache
under the user's home. Each place may be the dataset's own folder or a root holding one subfolder per
dataset. Downloads go to the first writable folder the user named, else to the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from visionstudy.errors import DataError

log = logging.getLogger(__name__)
ENV_DATA_DIR = "VISIONSTUDY_DATA_DIR"
# Replaces the official host of every download (tests, institutional mirrors): BASE/<file name>.
ENV_DOWNLOAD_URL = "VISIONSTUDY_DOWNLOAD_URL"
CHUNK = 1 << 20  # bytes read at a time when hashing or downloading
# Read-only places where a distribution's dataset packages install the official files.
SYSTEM_DATA_DIRS = (Path("/usr/share/datasets"),)


@dataclass(frozen=True)
class RemoteFile:
    """One official file: its name, where it is published, and its checksums."""

    name: str
    url: str
    md5: str
    # sha256 of the decompressed bytes of a .gz file: accepts an official copy re-compressed by a
    # packager (Debian's dataset-fashion-mnist is), since the gzip bytes differ but the data do not.
    content_sha256: str | None = None


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "visionstudy"


def user_roots(config_dir: Path | None = None, cli_dir: Path | None = None) -> list[Path]:
    """The folders the user named (config, command line, environment), most specific first."""
    env = os.environ.get(ENV_DATA_DIR)
    return unique_paths([config_dir, cli_dir, Path(env) if env else None])


def search_roots(config_dir: Path | None = None, cli_dir: Path | None = None) -> list[Path]:
    """The places to look for dataset files, most specific first, without duplicates."""
    return unique_paths([*user_roots(config_dir, cli_dir), *SYSTEM_DATA_DIRS, cache_root() / "data"])


def download_dir(name: str, config_dir: Path | None = None, cli_dir: Path | None = None) -> Path:
    """Where dataset `name`'s downloads go: the first writable folder the user named, else the cache."""
    named = [r for r in user_roots(config_dir, cli_dir) if r.is_dir() and os.access(r, os.W_OK)]
    return named[0] if named else cache_root() / "data" / name


def unique_paths(paths: Iterable[Path | None]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path is not None and path.expanduser() not in out:
            out.append(path.expanduser())
    return out


def candidate_dirs(roots: Sequence[Path], subdirs: Sequence[str]) -> list[Path]:
    """Each root itself, then each root's dataset subfolders (e.g. 'fashion-mnist')."""
    out: list[Path] = []
    for root in roots:
        for sub in ("", *subdirs):
            path = root / sub if sub else root
            if path.is_dir() and path not in out:
                out.append(path)
    return out


def find_file(name: str, roots: Sequence[Path], subdirs: Sequence[str]) -> Path | None:
    for folder in candidate_dirs(roots, subdirs):
        if (folder / name).is_file():
            return folder / name
    return None


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def gunzip_sha256(path: Path) -> str | None:
    """sha256 of a gzip file's decompressed bytes, or None when it is not a complete gzip file."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    return digest.hexdigest()


def verify_file(path: Path, remote: RemoteFile, verify: bool = True) -> None:
    """Raise a `DataError` naming the file and the fix unless `path` is the official file."""
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(
            f"{path}: the file is empty or missing; delete it and fetch it again "
            f"(visionstudy datasets fetch), or copy the official file from {remote.url}"
        )
    if not verify:
        return
    if file_md5(path) == remote.md5:
        return
    if remote.content_sha256 and gunzip_sha256(path) == remote.content_sha256:
        return  # a re-compressed copy holding exactly the official data
    raise DataError(
        f"{path}: checksum mismatch (expected md5 {remote.md5}); the file is truncated, damaged "
        f"or not the official one. Delete it and fetch it again, or pass --no-verify "
        f"(config: data.verify: false) to accept a re-packed copy"
    )


def warn_unverified(path: Path) -> None:
    log.warning("%s: checksum not verified (verify: false); results may not be comparable", path)


def download_url(remote: RemoteFile) -> str:
    base = os.environ.get(ENV_DOWNLOAD_URL)
    return f"{base.rstrip('/')}/{remote.name}" if base else remote.url


def download(remote: RemoteFile, folder: Path, verify: bool = True, timeout: float = 60.0) -> Path:
    """Download to a temporary file beside the target, verify, then rename into place.

    A broken or wrong download never leaves a file at the final path.
    """
    url = download_url(remote)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / remote.name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            written = 0
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                written += len(chunk)
        if expected is not None and written != int(expected):
            raise DataError(
                f"download of {url} ended after {written} of {expected} bytes; try again"
            )
        verify_file(tmp, remote, verify)
        os.replace(tmp, final)
        return final
    except DataError as exc:
        raise DataError(str(exc).replace(str(tmp), url)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DataError(
            f"could not download {url} ({exc}). Without internet access, put the official file "
            f"{remote.name} in a folder and pass --data-dir FOLDER (or set {ENV_DATA_DIR})"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------- extraction


def _check_tar_member(member: tarfile.TarInfo, dest: Path) -> None:
    name = member.name
    target = (dest / name).resolve()
    if os.path.isabs(name) or ".." in Path(name).parts or not target.is_relative_to(dest):
        raise DataError(f"refusing archive entry {name!r}: its path leads outside {dest}")
    if member.isdev() or member.isfifo():
        raise DataError(f"refusing archive entry {name!r}: device or fifo entries are not data")
    if member.issym() or member.islnk():
        link = member.linkname
        base = target.parent if member.issym() else dest
        if os.path.isabs(link) or not (base / link).resolve().is_relative_to(dest):
            raise DataError(f"refusing archive entry {name!r}: it links outside {dest} ({link})")


def safe_extract_tar(archive: Path, dest: Path) -> None:
    """Extract `archive` into `dest` only if every entry stays inside; else extract nothing.

    Entries are unpacked into a temporary folder beside `dest` and moved in when all succeeded, so a
    truncated archive never leaves a folder that looks complete.
    """
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_tar_member(member, dest)
            with tempfile.TemporaryDirectory(dir=dest, prefix=".extract-") as tmp:
                tar.extractall(tmp, members=members, filter="data")
                for child in Path(tmp).iterdir():
                    target = dest / child.name
                    if target.exists():
                        shutil.rmtree(target) if target.is_dir() else target.unlink()
                    os.replace(child, target)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"{archive}: the archive is truncated or corrupt ({exc}); delete it and fetch it again"
        ) from None


def safe_extract_zip(archive: Path, names: Iterable[str], dest: Path) -> dict[str, Path]:
    """Extract the named entries of a zip (matched by base name) into `dest`, atomically each."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = set(names)
    out: dict[str, Path] = {}
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                base = Path(info.filename).name
                if base not in wanted:
                    continue
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                if is_link or os.path.isabs(info.filename) or ".." in Path(info.filename).parts:
                    raise DataError(f"refusing archive entry {info.filename!r} in {archive}")
                fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{base}.", suffix=".part")
                try:
                    with os.fdopen(fd, "wb") as f, zf.open(info) as src:
                        shutil.copyfileobj(src, f, CHUNK)
                    os.replace(tmp, dest / base)
                finally:
                    Path(tmp).unlink(missing_ok=True)
                out[base] = dest / base
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"{archive}: the archive is truncated or corrupt ({exc}); delete it and fetch it again"
        ) from None
    missing = wanted - set(out)
    if missing:
        raise DataError(f"{archive}: missing entries {sorted(missing)}; is it the official file?")
    return out
