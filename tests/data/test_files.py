"""Safe extraction and atomic, verified downloads (against a local HTTP server)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from visionstudy.data import files
from visionstudy.data.files import RemoteFile, download, safe_extract_tar
from visionstudy.errors import DataError


def tar_with(path: Path, entries: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("good/file.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        for info in entries:
            data = io.BytesIO(b"x" * info.size) if info.isfile() else None
            tar.addfile(info, data)
    return path


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("bad", [
    entry("../escape.txt"),
    entry("/tmp/visionstudy-absolute.txt"),
    entry("good/../../escape.txt"),
    entry("link", tarfile.SYMTYPE, "/etc/passwd"),
    entry("link2", tarfile.SYMTYPE, "../../outside"),
    entry("hard", tarfile.LNKTYPE, "../outside"),
    entry("dev", tarfile.CHRTYPE),
], ids=["dotdot", "absolute", "nested-dotdot", "symlink-abs", "symlink-rel", "hardlink", "device"])
def test_hostile_tar_entries_are_refused_and_nothing_is_written(tmp_path, bad):
    archive = tar_with(tmp_path / "a.tar", [bad])
    dest = tmp_path / "deep" / "dest"
    dest.mkdir(parents=True)
    before = set(tmp_path.rglob("*"))
    with pytest.raises(DataError, match="refusing archive entry"):
        safe_extract_tar(archive, dest)
    after = set(tmp_path.rglob("*")) - before
    assert all(p == dest or p.is_relative_to(dest) for p in after)
    assert not (dest / "good").exists()  # all or nothing
    assert not Path("/tmp/visionstudy-absolute.txt").exists()


def test_inside_links_and_files_extract(tmp_path):
    archive = tar_with(tmp_path / "a.tar", [entry("good/alias", tarfile.SYMTYPE, "file.txt")])
    safe_extract_tar(archive, tmp_path / "out")
    assert (tmp_path / "out" / "good" / "alias").read_text() == "ok"


def test_truncated_tar_gives_clear_error(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("big.bin")
        blob = bytes(range(256)) * 4000
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    archive.write_bytes(archive.read_bytes()[:500])
    with pytest.raises(DataError, match="a.tar.gz: the archive is truncated or corrupt"):
        safe_extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "big.bin").exists()


PAYLOAD = b"official bytes " * 1000


class Handler(BaseHTTPRequestHandler):
    mode = "good"

    def do_GET(self):  # noqa: N802
        body = PAYLOAD if self.mode != "wrong" else b"X" * len(PAYLOAD)
        if self.mode == "short":  # a complete response of a truncated file
            body = body[: len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) if self.mode != "short" else len(body)))
        self.end_headers()
        # "truncated": the connection drops mid-stream, after half the announced bytes
        self.wfile.write(body[: len(body) // 2] if self.mode == "truncated" else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("VISIONSTUDY_DOWNLOAD_URL", f"http://127.0.0.1:{httpd.server_port}/files")
    yield Handler
    httpd.shutdown()


REMOTE = RemoteFile("data.bin", "https://example.invalid/data.bin",
                    hashlib.md5(PAYLOAD).hexdigest())


@pytest.mark.parametrize("mode", ["truncated", "short", "wrong"])
def test_bad_download_leaves_nothing(server, tmp_path, mode):
    server.mode = mode
    with pytest.raises(DataError) as err:
        download(REMOTE, tmp_path, timeout=5)
    assert "127.0.0.1" in str(err.value)
    assert list(tmp_path.iterdir()) == []
    server.mode = "good"
    assert download(REMOTE, tmp_path, timeout=5).read_bytes() == PAYLOAD


def test_unreachable_host_says_how_to_work_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONSTUDY_DOWNLOAD_URL", "http://127.0.0.1:9")
    with pytest.raises(DataError, match="could not download.*--data-dir"):
        download(REMOTE, tmp_path, timeout=2)
    assert list(tmp_path.iterdir()) == []


def zip_with(path: Path, name: str, data: bytes = b"x", symlink: bool = False) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (0o120777 << 16)
        zf.writestr(info, data)
        zf.writestr("gzip/ok.gz", b"fine")
    return path


@pytest.mark.parametrize("name, symlink", [
    ("../wanted.gz", False), ("/tmp/visionstudy-abs/wanted.gz", False), ("gzip/../../wanted.gz", False),
    ("gzip/wanted.gz", True),
], ids=["dotdot", "absolute", "nested-dotdot", "symlink"])
def test_hostile_zip_entries_are_refused_and_nothing_is_written_outside(tmp_path, name, symlink):
    from visionstudy.data.files import safe_extract_zip

    archive = zip_with(tmp_path / "a.zip", name, b"/etc/passwd" if symlink else b"payload", symlink)
    dest = tmp_path / "deep" / "dest"
    dest.mkdir(parents=True)
    before = set(tmp_path.rglob("*"))
    with pytest.raises(DataError, match="refusing archive entry"):
        safe_extract_zip(archive, ["wanted.gz"], dest)
    after = set(tmp_path.rglob("*")) - before
    assert all(p == dest or p.is_relative_to(dest) for p in after)
    assert not (tmp_path / "wanted.gz").exists() and not (tmp_path / "deep" / "wanted.gz").exists()
    assert not Path("/tmp/visionstudy-abs").exists()
    assert not any(p.is_symlink() for p in dest.rglob("*"))


def test_truncated_zip_is_a_clear_error(tmp_path):
    from visionstudy.data.files import safe_extract_zip

    archive = zip_with(tmp_path / "a.zip", "gzip/wanted.gz", b"y" * 5000)
    archive.write_bytes(archive.read_bytes()[:-60])
    with pytest.raises(DataError, match="truncated or corrupt.*fetch it again"):
        safe_extract_zip(archive, ["wanted.gz"], tmp_path / "out")


def test_system_dataset_folders_are_searched_but_never_written(tmp_path, monkeypatch):
    """Debian's dataset packages install into /usr/share/datasets: found without --data-dir, after
    the folders the user named; a download goes to a named writable folder or the cache, never there
    (root may write it)."""
    system, named = tmp_path / "usr-share-datasets", tmp_path / "mine"
    (system / "fashion-mnist").mkdir(parents=True)
    named.mkdir()
    monkeypatch.setattr(files, "SYSTEM_DATA_DIRS", (system,))
    roots = files.search_roots(cli_dir=named)
    assert roots == [named, system, files.cache_root() / "data"]
    assert files.candidate_dirs(roots, ["fashion-mnist"])[:3] == [named, system, system / "fashion-mnist"]
    assert files.download_dir("fashion_mnist", cli_dir=named) == named
    assert files.download_dir("fashion_mnist") == files.cache_root() / "data" / "fashion_mnist"
