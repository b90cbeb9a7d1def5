"""Runs of a study as trials in Optuna's RDB storage: the queue several workers share.

Each planned run is one trial whose user attribute `run` is its key (`variant/seed-k`). Workers
claim a WAITING trial by moving it to RUNNING (an atomic update in the database), record
heartbeats while training, and mark it COMPLETE with the test accuracy. A worker that dies stops
its heartbeat: Optuna fails the trial after the grace period and its retry callback queues it
again, and the next worker resumes the run from its `last.pt`.

The queue is Optuna's: runs are queued with `enqueue_trial`, moved WAITING → RUNNING with
`set_trial_state_values` (the update `Study.ask` makes), kept alive with `record_heartbeat` and
reclaimed with `fail_stale_trials` and the retry callback. Two things are ours, each because
Optuna's own measured wrong (`bench/queue_race.py`, four processes, 60 runs on SQLite):
- a file lock around the WAITING → RUNNING check-and-set on SQLite: pysqlite reads outside the
  write transaction, so two processes can both take one run (4-9 of 60 twice without it;
  `test_four_processes_claim_each_queued_run_exactly_once_on_sqlite`);
- no `ask()`: on an empty queue it starts a new, unplanned trial, and under contention it handed
  14-25 of 60 runs out twice (`test_optunas_ask_starts_an_unplanned_trial_when_the_queue_is_empty`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import socket
import sqlite3
import time
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from visionstudy.errors import StorageError

if TYPE_CHECKING:  # optuna is imported where it is used: opening a store is the first place
    from optuna.storages import RDBStorage, RetryFailedTrialCallback
    from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)

Finished = Mapping[str, float | None] | Callable[[], Mapping[str, float | None]]  # runs with results on disk
# heartbeats are marked experimental in Optuna; we rely on them knowingly
warnings.filterwarnings("ignore", message=".*experimental.*")



def seconds_from_env(name: str, default: int) -> int:
    """A whole number of seconds from the environment (a cluster's job script or a test may
    shorten the grace period), else `default`."""
    text = os.environ.get(name, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else default


# how often a worker says it is alive; the silence after which another worker takes its run over
HEARTBEAT_SECONDS = seconds_from_env("VISIONSTUDY_HEARTBEAT_SECONDS", 10)
GRACE_SECONDS = seconds_from_env("VISIONSTUDY_GRACE_SECONDS", 60)
# how long a process waits for a database server that stopped answering (restarted, a network
# outage) before it stops its runs: a connection refused meanwhile is tried again
DB_PATIENCE_SECONDS = seconds_from_env("VISIONSTUDY_DB_PATIENCE_SECONDS", 60)
POOL_SIZE = 2  # connections each process keeps open to a database server (+ POOL_OVERFLOW at peaks)
POOL_OVERFLOW = 2


DB_FILE = "study.db"  # a study's SQLite database, in its folder


def default_url(study_dir: Path) -> str:
    return f"sqlite:///{(study_dir / DB_FILE).resolve()}"


URL_FILE = "db-url"  # the database server a study was launched with (its owner alone may read it)


def record_url(study_dir: Path, url: str) -> None:
    """Remember the study's database (a --db of `study run`, `work` or a launch), so that `study
    status`, `work`, `cancel` and `report` on the folder need no --db. A relative SQLite path is
    recorded absolute (it was relative to the directory of the command that gave it)."""
    if url.startswith("sqlite:///"):
        url = f"sqlite:///{sqlite_path(url).resolve()}"
    path = study_dir / URL_FILE
    study_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text(url + "\n")


RECORDED_IN: dict[str, Path] = {}  # URL → the db-url file it was read from: named when it cannot be opened


def recorded_url(study_dir: Path) -> str | None:
    try:
        url = (study_dir / URL_FILE).read_text().strip() or None
    except OSError:
        return None
    if url:
        RECORDED_IN[normalize_url(url)] = study_dir / URL_FILE
    return url


NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "lustre",
                       "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph", "gpfs", "beegfs", "afs"}


def mount_table() -> list[tuple[str, str]]:
    """(mount point, file-system type) of every mount (Linux /proc/mounts; empty elsewhere)."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 3:
            out.append((parts[1].replace("\\040", " "), parts[2]))
    return out


def filesystem_of(path: Path) -> str:
    """The type of the file system `path` lies on (its longest matching mount point)."""
    target = str(path.resolve())
    best, kind = "", ""
    for point, fstype in mount_table():
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return kind


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def check_sqlite(url: str, write: bool = True) -> Path:
    """Refuse, with the reason and the fix, an SQLite file that cannot work: on a network file
    system (SQLite's WAL needs shared memory on one machine), damaged, unreadable or read-only."""
    path = sqlite_path(url)
    existing = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("/"))
    fstype = filesystem_of(existing)
    if fstype in NETWORK_FILESYSTEMS:
        raise StorageError(
            f"{path}: the study database would be an SQLite file on a network file system ({fstype}); "
            "SQLite's write-ahead log does not work there and several machines would corrupt it. "
            "Use --db postgresql://user:password@host/database, or --runs-dir on a local disk")
    if path.exists():
        if not os.access(path, os.R_OK):
            raise StorageError(f"{path}: the study database cannot be read (permission denied); fix its "
                             "permissions or pass --runs-dir / --db to use another one")
        if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
            # even readers of a WAL database write its shared-memory index beside it
            raise StorageError(f"{path}: the study database (or its folder) is read-only; make both "
                             "writable (or copy the study folder somewhere writable), or pass "
                             "--runs-dir / --db to use another one")
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as con:
                con.execute("PRAGMA schema_version").fetchone()
                if con.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
                    raise sqlite3.DatabaseError("integrity check failed")
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise StorageError(
                f"{path}: the study database is damaged or not an SQLite file ({exc}); move it aside "
                "(e.g. mv study.db study.db.bad): `study run` then rebuilds it from the finished run "
                "folders, which hold every result") from None
        foreign = sorted(tables - OPTUNA_TABLES)
        if foreign or (tables and "studies" not in tables):
            raise StorageError(
                f"{path}: an SQLite database of something else (tables {', '.join(foreign[:5]) or 'none'}"
                f"{' ...' if len(foreign) > 5 else ''}), not a study database; it is left as it is. Give "
                "--db a new file or a study's own study.db")
    return path


OPTUNA_TABLES = {"alembic_version", "studies", "study_directions", "study_system_attributes",
                 "study_user_attributes", "trial_heartbeats", "trial_intermediate_values", "trial_params",
                 "trial_system_attributes", "trial_user_attributes", "trial_values", "trials",
                 "version_info", "version"}  # the tables of an Optuna storage (RDBStorage)


def prepare_sqlite(url: str) -> None:
    """WAL journal (readers never block the writer) set once in the file; it persists."""
    path = check_sqlite(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # created by us with the umask's mode (SQLite's own 0644 would lock a group out of a shared
        # study), and only when new: closing any descriptor of an open database drops every POSIX
        # lock this process's SQLite connections hold on it
        if not path.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as con:
            con.execute("PRAGMA journal_mode=WAL")
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"{path}: cannot open the study database ({exc}); check the folder, "
                         "or pass --runs-dir / --db") from None


def normalize_url(url: str) -> str:
    """`postgresql://` means the driver we install (psycopg2); SQLAlchemy 2 would pick psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            try:
                import psycopg  # noqa: F401
            except ImportError:
                return "postgresql+psycopg2://" + url[len(prefix):]
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


_storages: dict[tuple[str, int, int], tuple[RDBStorage, int]] = {}  # (storage, pid)


def storage_for(url: str, heartbeat: int = HEARTBEAT_SECONDS, grace: int = GRACE_SECONDS,
                write: bool = True) -> RDBStorage:
    """The storage for `url`. For a database server, the process's one storage (one engine, one
    small connection pool): twenty jobs of a few processes each stay far below PostgreSQL's
    connection limit (100 by default). An SQLite file is opened each time (it may have been moved
    aside or rebuilt since; its connections are file handles, not a server's slots)."""
    if url.startswith("sqlite:"):
        return open_storage(url, heartbeat, grace, write)
    key = (url, heartbeat, grace)
    if key not in _storages or _storages[key][1] != os.getpid():  # a forked child opens its own
        _storages[key] = (open_storage(url, heartbeat, grace, write), os.getpid())
    return _storages[key][0]


def open_storage(url: str, heartbeat: int, grace: int, write: bool) -> RDBStorage:
    import optuna
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # SQLAlchemy logs the cleanup of a connection that Ctrl-C interrupted ("Error closing cursor
    # ... ProgrammingError") through its pool's logger: nothing a user can act on, and a stop is
    # already reported once by the driver
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
    url = normalize_url(url)
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite:"):
        if write:
            prepare_sqlite(url)
        else:
            check_sqlite(url, write=False)
        engine["connect_args"] = {"timeout": 60}  # busy timeout: wait for the writer's lock
    else:
        engine.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_recycle=600)
    last: Exception | None = None
    for attempt in range(4):
        try:
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=grace,
                **{retry_argument(): retry_callback(3)},  # type: ignore[arg-type]
            )
            if not url.startswith("sqlite:"):  # opened: from now on a server that goes away is waited for
                import sqlalchemy as sa

                sa.event.listen(storage.engine, "do_connect", patient_connect(DB_PATIENCE_SECONDS))
            return storage
        except RuntimeError as exc:  # Optuna's schema check: tables it did not make, or a newer Optuna's
            raise StorageError(f"--db {redact(url)}: not a study database this Optuna ({optuna.__version__}) "
                               f"can use ({str(exc).splitlines()[0][:200]}); give --db a new database or a "
                               "study's own") from None
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            # two workers creating the tables of a fresh database at once: one loses the race
            # (PostgreSQL: duplicate pg_type entry) and succeeds when it tries again
            last = exc
            if isinstance(exc, ImportError | ValueError):
                break
            if isinstance(exc, OperationalError) and not url.startswith("sqlite:"):
                break  # a server that refuses or is not there: trying again only makes the user wait
            time.sleep(0.5 + random.random() * (attempt + 1))
    first = str(last).splitlines()[0][:300]
    where = RECORDED_IN.get(normalize_url(url))
    recorded = (f"; it is the database recorded in {where} when the study ran with --db: give --db to use "
                f"another, or delete {where} to go back to the study's own SQLite file") if where else ""
    raise StorageError(f"--db {redact(url)}: cannot open the database ({first}); check the URL, "
                       f"that the server is running and that you may connect{recorded}") from None


def patient_connect(patience: float) -> Callable[..., Any]:
    """SQLAlchemy's `do_connect` hook: a new connection to a server that refuses it (stopped for a
    restart, a network outage) is tried again for up to `patience` seconds, once the store is open.
    With the pool's pre-ping every database call takes a fresh connection after an outage, so a
    study waits out a server restart instead of stopping every worker (each of a cluster's jobs)."""

    def connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
        start, delay, told = time.monotonic(), 0.25, False
        dbapi = getattr(dialect, "loaded_dbapi", None) or dialect.dbapi  # SQLAlchemy 2, 1.4
        while True:
            try:
                connection = dialect.connect(*cargs, **cparams)
            except dbapi.OperationalError as exc:
                waited = time.monotonic() - start
                if waited >= patience:
                    raise
                if not told:
                    why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                    log.warning("the database does not answer (%s); waiting up to %.0f s for it "
                                "(VISIONSTUDY_DB_PATIENCE_SECONDS)", why, patience)
                    told = True
                time.sleep(min(delay, patience - waited))
                delay = min(delay * 2, 5.0)
                continue
            if told:
                log.warning("the database answers again, after %.0f s", time.monotonic() - start)
            return connection

    return connect


def connection_lost(exc: BaseException) -> str | None:
    """The first line of the database's own error when `exc` (or an exception it came from) is a
    failing database (a server refusing, resetting or closing connections; a file locked or not
    writable) rather than a defect; else None."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    seen: BaseException | None = exc
    for _ in range(20):  # a chain, not a loop
        if seen is None:
            return None
        if isinstance(seen, OperationalError | InterfaceError):
            return str(seen.orig if seen.orig is not None else seen).strip().splitlines()[0][:200]
        seen = seen.__cause__ or seen.__context__
    return None


def retry_argument() -> str:
    import optuna

    new = hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback")  # Optuna >= 4.9
    return "heartbeat_stale_trial_callback" if new else "failed_trial_callback"


def retry_callback(max_retry: int | None) -> RetryFailedTrialCallback:
    """Optuna's callback that queues a copy (same user attributes) of a trial whose worker died."""
    import optuna

    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or \
        optuna.storages.RetryFailedTrialCallback
    return cls(max_retry=max_retry)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


@dataclass(frozen=True)
class Claim:
    trial_id: int
    number: int
    key: str


class TrialRow(NamedTuple):
    """One trial of a run, as `RunStore.rows` reads it: `value` is its user attribute asked for."""

    trial_id: int
    number: int
    state: TrialState
    key: str
    value: Any


@dataclass(frozen=True)
class TrialRecord:
    """What planning needs of one trial of a run."""

    number: int
    state: TrialState
    config_hash: str | None


# the statuses (`RunStore.status`) of the runs a study run trains: `queue_missing` queues every run
# that is neither done nor running, and the waiting ones are queued already
TO_TRAIN = ("new", "waiting", "failed", "missing")


class RunStore:
    """One study's runs in the database."""

    def __init__(self, url: str, study_name: str, heartbeat: int = HEARTBEAT_SECONDS,
                 grace: int = GRACE_SECONDS, create: bool = True) -> None:
        import optuna

        self.url = url
        self.storage = storage_for(url, heartbeat, grace, write=create)
        # SQLite through SQLAlchemy's pysqlite reads outside the write transaction, so two workers
        # can both see a run WAITING and both take it; workers of an SQLite study share one machine,
        # so a file lock makes their check-and-take atomic (PostgreSQL locks the row itself)
        self.lock_path = (Path(url.removeprefix("sqlite:///")).with_suffix(".claim.lock")
                          if url.startswith("sqlite:") else None)
        from sqlalchemy.exc import SQLAlchemyError

        try:
            self.study = (optuna.create_study(study_name=study_name, storage=self.storage,
                                              load_if_exists=True, direction="maximize") if create
                          else optuna.load_study(study_name=study_name, storage=self.storage))
        except SQLAlchemyError as exc:
            raise StorageError(f"--db {redact(url)}: the study database cannot be used "
                             f"({str(exc).splitlines()[0][:200]}); check that it is writable and "
                             "not damaged, or pass another --db / --runs-dir") from None

    # ----------------------------------------------------------------------------- reading

    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[FrozenTrial]:
        return [t for t in self.study.get_trials(deepcopy=False, states=states) if "run" in t.user_attrs]

    def rows(self, attr: str, state: TrialState | None = None,
             key: str | None = None) -> list[TrialRow]:
        """The runs' trials with their user attribute `attr` (None where unset),
        lowest number first, in one query on Optuna's own tables (of one `state`, of one run `key`
        when given): reading trials through Optuna loads every one's parameters, attributes and
        values, which grows with the study for every claim (bench/scale.py). Optuna's schema is
        checked when the storage opens; it stores an attribute as `json.dumps` of its value."""
        import sqlalchemy as sa
        from optuna.storages._rdb import models
        from optuna.trial import TrialState
        from sqlalchemy.exc import SQLAlchemyError

        trials, attrs = models.TrialModel.__table__, models.TrialUserAttributeModel.__table__
        run, extra = attrs.alias("run"), attrs.alias("extra")
        study_id = self.storage.get_study_id_from_name(self.study.study_name)
        query = (sa.select(trials.c.trial_id, trials.c.number, trials.c.state, run.c.value_json,
                           extra.c.value_json)
                 .join(run, sa.and_(run.c.trial_id == trials.c.trial_id, run.c.key == "run"))
                 .outerjoin(extra, sa.and_(extra.c.trial_id == trials.c.trial_id, extra.c.key == attr))
                 .where(trials.c.study_id == study_id)
                 .order_by(trials.c.number))
        if state is not None:
            query = query.where(trials.c.state == state)
        if key is not None:
            query = query.where(run.c.value_json == json.dumps(key))
        try:
            with self.storage.engine.connect() as con:
                return [TrialRow(tid, number, s if isinstance(s, TrialState) else TrialState[str(s)],
                                 json.loads(run_key), json.loads(value) if value else None)
                        for tid, number, s, run_key, value in con.execute(query)]
        except SQLAlchemyError as exc:
            raise StorageError(f"--db {redact(self.url)}: the study database cannot be read "
                               f"({str(exc).splitlines()[0][:200]})") from None

    def run_records(self, key: str | None = None) -> dict[str, list[TrialRecord]]:
        """Each run's trials (number, state, config hash); with `key`, that run's alone."""
        out: dict[str, list[TrialRecord]] = {}
        for row in self.rows("config_hash", key=key):
            out.setdefault(row.key, []).append(TrialRecord(row.number, row.state, row.value))
        return out

    def run_states(self) -> dict[str, set[TrialState]]:
        return {key: {r.state for r in records} for key, records in self.run_records().items()}

    def status(self, keys: list[str], on_disk: Collection[str] | None = None) -> dict[str, str]:
        """done / running / waiting / failed / missing / new for each planned key. With `on_disk`
        (the keys whose folder holds metrics.json) a run is done only when its results exist:
        a completed run whose results were deleted is `missing`."""
        from optuna.trial import TrialState

        groups = self.run_states()
        out = {}
        for key in keys:
            states = groups.get(key, set())
            if TrialState.RUNNING in states:
                out[key] = "running"
            elif TrialState.WAITING in states:
                out[key] = "waiting"
            elif TrialState.COMPLETE in states:
                out[key] = "done" if on_disk is None or key in on_disk else "missing"
            elif TrialState.FAIL in states:
                out[key] = "failed"
            else:
                out[key] = "new"
        return out

    def silent(self) -> list[str]:
        """Runs that read as running though their worker is gone: its process on this machine no
        longer exists, or it has sent no heartbeat for the grace period (a worker killed outright,
        a lost node). The next worker that looks puts them back in the queue (`reclaim_stale`)."""
        import sqlalchemy as sa
        from optuna.storages._rdb import models
        from optuna.trial import TrialState

        running = self.rows("worker", TrialState.RUNNING)
        if not running:
            return []
        beats = models.TrialHeartbeatModel.__table__
        with self.storage.engine.connect() as con:
            now = con.execute(sa.select(sa.func.now())).scalar()
            last: dict[int, Any] = dict(con.execute(sa.select(beats.c.trial_id, beats.c.heartbeat)
                                    .where(beats.c.trial_id.in_([r.trial_id for r in running]))).all())
        grace = self.storage.grace_period or 2 * (self.storage.heartbeat_interval or HEARTBEAT_SECONDS)

        def gone(row: TrialRow) -> bool:
            beat = last.get(row.trial_id)
            return ended_here(row.value) or beat is not None and now is not None and (
                now.replace(tzinfo=None) - beat.replace(tzinfo=None)).total_seconds() > grace

        return sorted({r.key for r in running if gone(r)})

    def counts(self, keys: list[str], on_disk: Collection[str] | None = None) -> Counter[str]:
        return Counter(self.status(keys, on_disk).values())

    # ----------------------------------------------------------------------------- planning

    def sync(self, plan: dict[str, str], finished: Finished,
             replace: Callable[[list[str]], None] | None = None) -> int:
        """Queue every planned run (key → config hash) not queued or running and without results
        on disk; `finished` holds runs whose folder has results (recorded as done without
        training), or is a function that reads them. A run recorded done whose results are gone
        is queued again. Returns the number queued. A run whose last trial has another config
        is an error where it finished or is training; otherwise the new config replaces the old
        (`replace` is given the keys first: the caller clears their folders). The function is
        called after the records are read: a run another process
        finishes meanwhile writes its results before it is recorded done, so it is never taken for
        one whose results were deleted (read before, the disk could miss them and the records
        show them done: the run trained twice)."""
        with self.planning():
            return self.queue_missing(plan, finished, replace)

    @contextlib.contextmanager
    def planning(self) -> Iterator[None]:
        """One planner at a time per study: a cluster's launcher and its first jobs plan at once
        (PostgreSQL: an advisory lock, released when its connection ends; SQLite: the claim file
        lock). Without it both could queue a run, and one of the two would only be discarded as a
        duplicate when claimed."""
        if self.lock_path is not None:
            with claim_lock(self.lock_path):
                yield
            return
        if self.storage.engine.dialect.name != "postgresql":
            yield  # another server: the claim's duplicate check is the safety net
            return
        import zlib

        import sqlalchemy as sa

        key = zlib.crc32(f"visionstudy plan {self.study.study_name}".encode())
        with self.storage.engine.connect() as con:
            con.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                con.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})

    def queue_missing(self, plan: dict[str, str], finished: Finished,
                      replace: Callable[[list[str]], None] | None = None) -> int:
        import optuna
        from optuna.trial import TrialState

        groups = self.run_records()
        if any(t.state == TrialState.RUNNING for records in groups.values() for t in records):
            self.fail_dead_local_workers()
            groups = self.run_records()
        finished = finished() if callable(finished) else finished  # the disk after the records
        changed = [k for k, h in plan.items() if groups.get(k)
                   and max(groups[k], key=lambda t: t.number).config_hash not in (None, h)]
        kept = [k for k in changed
                if k in finished or any(t.state == TrialState.RUNNING for t in groups[k])]
        if kept:
            raise StorageError(
                f"study '{self.study.study_name}' in {redact(self.url)} already holds runs "
                f"{', '.join(sorted(kept)[:5])} with a different config, finished or training; a "
                "study name must keep one definition of them: rename the study (or the changed "
                "variants), or use another --db / --runs-dir"
            )
        superseded: dict[str, int] = {}
        if changed:  # failed, stopped or waiting: the new definition replaces the old one's trials
            if replace is not None:
                replace(changed)
            for key in changed:
                self.retire(key)
                # an older definition's trials do not count, a completed one (its results gone) included
                superseded[key] = max(t.number for t in groups[key])
                groups[key] = []
        queued = 0
        for key, h in plan.items():
            states = {t.state for t in groups.get(key, [])}
            if states & {TrialState.RUNNING, TrialState.WAITING}:
                continue
            if TrialState.COMPLETE in states and key in finished:
                continue
            attrs: dict[str, Any] = {"run": key, "config_hash": h}
            done = [t.number for t in groups.get(key, []) if t.state == TrialState.COMPLETE]
            if done or key in superseded:  # recorded done, results gone: this trial supersedes the stale ones
                attrs["supersedes"] = max([*done, superseded.get(key, -1)])
            if key in finished:
                self.study.add_trial(optuna.trial.create_trial(
                    state=TrialState.COMPLETE, value=finished[key] or 0.0, user_attrs=attrs))
                continue
            self.study.enqueue_trial({}, user_attrs=attrs)
            queued += 1
        return queued

    def fail_dead_local_workers(self) -> None:
        """RUNNING trials of a process on this machine that no longer exists are failed (and
        retried) at once, without waiting for the heartbeat grace period."""
        import optuna
        from optuna.trial import TrialState

        for trial_id, _, _, _, worker in self.rows("worker", TrialState.RUNNING):
            if ended_here(worker):
                try:
                    if self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                        self.queue_copy(trial_id)
                except optuna.exceptions.UpdateFinishedTrialError:
                    pass

    # ----------------------------------------------------------------------------- working

    def reclaim_stale(self) -> None:
        """Runs whose worker stopped beating for the grace period, or whose process on this machine
        is gone, back to the queue."""
        import optuna

        optuna.storages.fail_stale_trials(self.study)
        self.fail_dead_local_workers()

    def claim(self, keys: set[str], worker_pid: int | None = None) -> Claim | None:
        """Atomically take a WAITING run among `keys` (lowest trial number first) for the process
        `worker_pid` (default: this one), whose liveness says whether the run is still trained."""
        from optuna.trial import TrialState

        self.reclaim_stale()
        worker = {"host": socket.gethostname(), "pid": worker_pid or os.getpid(), "driver": os.getpid()}
        for trial_id, number, _, key, supersedes in self.rows("supersedes", TrialState.WAITING):
            if key not in keys:
                continue
            if not self.take(trial_id, worker):
                continue  # another worker was faster
            if self.lock_path is None:  # no lock across processes: another claimer may have named itself
                self.storage.set_trial_user_attr(trial_id, "worker", worker)
            if self.duplicate(number, key, int(supersedes) if supersedes is not None else -1):
                self.storage.set_trial_user_attr(trial_id, "duplicate", True)
                self.storage.set_trial_state_values(trial_id, state=TrialState.PRUNED)
                continue
            return Claim(trial_id, number, key)
        return None

    def take(self, trial_id: int, worker: dict[str, Any] | None = None) -> bool:
        """WAITING → RUNNING for this worker alone. `worker` (who trains it) and a heartbeat are
        written first: a claimer killed right after taking the run has named its process (a later
        claim on this machine returns the run at once) and left a beat that goes stale (anywhere,
        the grace period returns it); named after the take, such a run stayed RUNNING for ever."""
        import optuna
        from optuna.trial import TrialState

        with claim_lock(self.lock_path):
            try:
                if self.storage.get_trial(trial_id).state != TrialState.WAITING:
                    return False
                if worker is not None:
                    self.storage.set_trial_user_attr(trial_id, "worker", worker)
                    self.heartbeat(trial_id)
                return bool(self.storage.set_trial_state_values(trial_id, state=TrialState.RUNNING))
            except optuna.exceptions.UpdateFinishedTrialError:
                return False

    def duplicate(self, number: int, key: str, supersedes: int = -1) -> bool:
        """Two drivers planning at once may queue one run twice: the lowest-numbered live trial
        owns the run, any other is a duplicate. Live: queued, running, or completed after the
        trial this one `supersedes` (a run re-queued because its results were deleted)."""
        from optuna.trial import TrialState

        live = [t.number for t in self.run_records(key).get(key, [])
                if t.state in (TrialState.RUNNING, TrialState.WAITING)
                or (t.state == TrialState.COMPLETE and t.number > supersedes)]
        return bool(live) and min(live) < number

    def heartbeat(self, trial_id: int) -> None:
        self.storage.record_heartbeat(trial_id)

    def complete(self, claim: Claim, value: float, attrs: dict[str, Any]) -> None:
        """Record a claimed run's result; when its trial was ended meanwhile (its heartbeat
        stalled past the grace period and another worker's check re-queued it), on the queued copy
        (a copy another worker already trains finds the results on disk)."""
        import optuna
        from optuna.trial import TrialState

        trial_id = self.live_trial(claim)
        if trial_id is None:
            return
        try:
            for k, v in attrs.items():
                self.storage.set_trial_user_attr(trial_id, k, v)
            self.storage.set_trial_state_values(trial_id, state=TrialState.COMPLETE, values=[value])
        except optuna.exceptions.UpdateFinishedTrialError:
            pass

    def live_trial(self, claim: Claim) -> int | None:
        """The claim's trial while it runs, else its re-queued copy taken for this process (None:
        no copy waits: another worker has it)."""
        from optuna.trial import TrialState

        if not self.storage.get_trial(claim.trial_id).state.is_finished():
            return claim.trial_id
        queued = self.rows("worker", TrialState.WAITING, claim.key)
        return queued[0].trial_id if queued and self.take(queued[0].trial_id) else None

    def fail(self, claim: Claim, message: str, log: str | None = None) -> None:
        """Mark a claimed run failed with its error; when its trial was already ended (a dead
        worker's run failed and re-queued by another check), the re-queued copy is failed."""
        import optuna
        from optuna.trial import TrialState

        trial_id = self.live_trial(claim)
        if trial_id is None:
            return
        try:
            self.storage.set_trial_user_attr(trial_id, "error", message[:2000])
            if log:
                self.storage.set_trial_user_attr(trial_id, "log", log)
            self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass

    def orphaned_stops(self, keys: Collection[str]) -> list[int]:
        """Trials of runs among `keys` that were stopped (failed without an error: a stop, a lost
        heartbeat, a dead worker) and whose copy was never queued: the process re-queueing the run
        died between its two steps. The last trial of each run alone counts."""
        from optuna.trial import TrialState

        last = {row.key: row for row in self.rows("error")}  # lowest number first: the last wins
        return [r.trial_id for key, r in last.items()
                if key in keys and r.state == TrialState.FAIL and r.value is None]

    def retire(self, key: str) -> None:
        """A run redefined before it finished: its queued trials of the old definition are failed
        (a worker must not claim them); its failed ones stay as history."""
        import optuna
        from optuna.trial import TrialState

        for row in self.rows("config_hash", TrialState.WAITING, key=key):
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                self.storage.set_trial_state_values(row.trial_id, state=TrialState.FAIL)

    def failures(self, keys: Collection[str]) -> dict[str, str]:
        """The error of each run among `keys` whose last trial failed with one (a stop or a lost
        worker fails a trial without an error: it is queued again, not a failure)."""
        from optuna.trial import TrialState

        last = {row.key: row for row in self.rows("error")}  # lowest number first: the last wins
        return {key: str(r.value) for key, r in last.items()
                if key in keys and r.state == TrialState.FAIL and r.value is not None}

    def queue_copy(self, trial_id: int) -> None:
        """Queue a copy of a stopped trial (what Optuna's retry callback does after a failure)."""
        retry_callback(None)(self.study, self.storage.get_trial(trial_id))

    def requeue(self, claim: Claim) -> None:
        """Fail a claimed run that was stopped (not broken) and queue it again: it resumes."""
        import optuna
        from optuna.trial import TrialState

        try:
            self.storage.set_trial_state_values(claim.trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            return
        self.queue_copy(claim.trial_id)


@contextlib.contextmanager
def claim_lock(path: Path | None) -> Iterator[None]:
    """An exclusive lock on `path` held for the block (nothing when `path` is None)."""
    if path is None:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ended_here(worker: dict[str, Any] | None) -> bool:
    """Whether a run's recorded worker (host, pid) was a process on this machine that has ended."""
    worker = worker or {}
    return worker.get("host") == socket.gethostname() and not pid_alive(int(worker.get("pid", -1)))


def pid_alive(pid: int) -> bool:
    """Whether process `pid` on this machine still runs (a zombie — killed, not yet reaped — does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def open_store(url: str, study_name: str) -> RunStore:
    return RunStore(url, study_name)


def holds_studies(url: str) -> bool:
    """Whether the database at `url` holds Optuna's tables, asked without creating them (opening
    an Optuna storage creates them in an empty database). A server that cannot be asked says yes:
    opening the storage then gives the one clear error."""
    if url.startswith("sqlite:"):
        return sqlite_path(url).is_file()
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    try:
        return sa.inspect(engine).has_table("studies")
    except SQLAlchemyError:
        return True
    finally:
        engine.dispose()


def existing_store(url: str, study_name: str) -> RunStore | None:
    """The study's store if the database and the study exist; creates nothing (for `status` and
    the dry run: not even Optuna's tables in an empty database)."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    if not holds_studies(url):
        return None
    storage = storage_for(url, write=False)
    try:
        names = set(optuna.get_all_study_names(storage))  # summaries read every trial
    except SQLAlchemyError as exc:
        raise StorageError(f"--db {redact(url)}: the study database cannot be read "
                         f"({str(exc).splitlines()[0][:200]})") from None
    return RunStore(url, study_name, create=False) if study_name in names else None
