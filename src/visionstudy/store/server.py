"""A PostgreSQL server for a study's database, for clusters that have none: `visionstudy db start`
runs the installed binaries (initdb, pg_ctl) on a folder, with a generated password, listening on
every address so that jobs on other nodes can reach it; `db stop` stops it.

    DIR/data/       the database cluster (initdb)
    DIR/url         the --db URL to give `study run` (readable by its owner only)
    DIR/server.log  the server's log
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from visionstudy.errors import VisionStudyError

USER = "visionstudy"  # the database role the URL names (a superuser of this private server)
DATABASE = "postgres"


class ServerError(VisionStudyError):
    """The PostgreSQL server cannot be started or stopped."""


@dataclass(frozen=True)
class Server:
    folder: Path

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def url_file(self) -> Path:
        return self.folder / "url"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def url(self) -> str:
        return self.url_file.read_text().strip()


def pg_bin() -> Path:
    """The folder of the newest installed PostgreSQL's initdb and pg_ctl."""
    on_path = shutil.which("initdb")
    def major(path: str) -> int:
        version = Path(path).parts[-3]
        return int(version) if version.isdigit() else 0

    found = [Path(on_path).parent] if on_path else [
        Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major)]
    if not found:
        raise ServerError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: on Debian "
                          "`apt-get install postgresql`, elsewhere your distribution's server package "
                          "(or `module load postgresql` on a cluster); or pass an existing server with --db")
    return found[-1]


def as_server_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise ServerError("cannot start PostgreSQL as root (it refuses) and `runuser` is missing; "
                          "run `visionstudy db start` as an ordinary user")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise ServerError("cannot start PostgreSQL as root (it refuses) and there is no `postgres` user; "
                          "run `visionstudy db start` as an ordinary user") from None
    return ["runuser", "-u", "postgres", "--"]


def pg_ctl(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*as_server_user(), str(pg_bin() / "pg_ctl"), "-D", str(server.data), *args],
                          capture_output=True, text=True)


def is_running(server: Server) -> bool:
    return server.data.is_dir() and pg_ctl(server, "status").returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def port_taken(port: int) -> bool:
    """Whether another program listens on `port` (IPv4, every address). PostgreSQL would start
    anyway, on IPv6 alone, and clients of its URL would wait on the other program."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no owner
        try:
            s.bind(("", port))
        except OSError:
            return True
    return False


def recorded_port(server: Server) -> int | None:
    """The port of the URL this server was last started with (its studies recorded that URL)."""
    try:
        return urlsplit(server.url()).port
    except (OSError, ValueError):
        return None


def choose_port(server: Server, port: int | None) -> int:
    """--port, else the port the server had (a restarted server keeps its URL: studies recorded
    it), else a free one; a port another program holds is refused."""
    earlier = recorded_port(server)
    chosen = port or earlier or free_port()
    if port_taken(chosen):
        if port:
            raise ServerError(f"--port {port}: another program listens on it; choose another --port, "
                              "or leave it out (a free one is chosen)")
        raise ServerError(f"port {chosen} of this server's URL ({server.url_file}) is taken by another "
                          "program; pass --port N to start it on another (a study that recorded the old "
                          "URL then needs --db with the new one)")
    return chosen


def start(folder: Path, port: int | None = None, host: str | None = None) -> Server:
    """Start (creating it the first time) the server in `folder`; returns it. Starting a server
    that runs already only returns it (on another --port: an error)."""
    server = Server(folder.resolve())
    if is_running(server):
        running = recorded_port(server)
        if port and running and port != running:
            raise ServerError(f"--port {port}: the server in {folder} runs already, on port {running}; "
                              f"stop it first (`visionstudy db stop --dir {folder}`) to move it")
        return server
    runner = as_server_user()
    if server.folder.exists() and not server.folder.is_dir():
        raise ServerError(f"--dir {folder}: a file, not a folder; give the folder for the server (a new "
                          "one is created)")
    try:
        server.folder.mkdir(parents=True, exist_ok=True)
        if runner:  # the postgres user must reach its folder
            os.chmod(server.folder, 0o755)
    except OSError as exc:
        raise ServerError(f"{folder}: cannot create the server's folder ({exc.strerror}); "
                          "choose a writable --dir") from None
    port = choose_port(server, port)
    if not (server.data / "PG_VERSION").is_file():
        init(server, runner)
    host = host or socket.gethostname()
    # each job holds a few connections (store.db.POOL_SIZE + overflow): 200 is room for ~50 jobs
    options = f"-p {port} -k {server.data} -c listen_addresses=* -c max_connections=200"
    done = subprocess.run([*runner, str(pg_bin() / "pg_ctl"), "-D", str(server.data), "-w", "-t", "60",
                           "-l", str(server.log), "-o", options, "start"], capture_output=True, text=True)
    if done.returncode != 0:
        log = server.log.read_text(errors="replace").strip().splitlines() if server.log.is_file() else []
        why = "; ".join(log[-3:]) or done.stderr.strip()
        raise ServerError(f"PostgreSQL did not start in {server.folder} ({why}); is the port taken? "
                          "pass another --port")
    password = (server.folder / "password").read_text().strip()
    url = f"postgresql://{USER}:{password}@{host}:{port}/{DATABASE}"
    server.url_file.write_text(url + "\n")
    os.chmod(server.url_file, 0o600)
    return server


def init(server: Server, runner: list[str]) -> None:
    """A new database cluster whose one role is USER, by password, from any address."""
    password = secrets.token_urlsafe(18)
    pwfile = server.folder / "password"
    pwfile.write_text(password + "\n")
    os.chmod(pwfile, 0o600)
    if runner:
        shutil.chown(pwfile, "postgres")
        shutil.chown(server.folder, "postgres")
    done = subprocess.run([*runner, str(pg_bin() / "initdb"), "-D", str(server.data), "-U", USER,
                           "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ServerError(f"initdb failed in {server.data}: {done.stderr.strip()[-300:]}")
    hba = server.data / "pg_hba.conf"
    with open(hba, "a") as f:  # jobs on other nodes: by password
        f.write("host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n")


def stop(folder: Path) -> bool:
    """Stop the server in `folder`; False when none was running."""
    server = Server(folder.resolve())
    if not server.data.is_dir():
        raise ServerError(f"{folder}: no database server here (no data/ folder); give the --dir "
                          "that `visionstudy db start` used")
    if not is_running(server):
        return False
    done = pg_ctl(server, "-m", "fast", "-w", "stop")
    if done.returncode != 0:
        raise ServerError(f"PostgreSQL in {server.folder} did not stop: {done.stderr.strip()[-300:]}")
    return True
