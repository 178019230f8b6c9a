"""Database engine, sessions and migrations."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.sql.expression import FromClause
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# How long a SQLite statement waits for another connection's write lock before it fails.
BUSY_TIMEOUT_MS = 30_000

# The API's threadpool: sync routes and the DB work of async routes run on at most this many
# threads at once (api.app sets the limiter to it). The worker's activity executor runs the
# projection writes on up to WORKER_THREADS. Each process sizes its engine to its own threads
# (api.app, aftersales.worker); POOL_SIZE is for an engine both share (tests, scripts).
API_THREADS = 40
WORKER_THREADS = 32
# One connection per thread that may hold one: a request never waits on the pool for a
# connection another thread sits on, and the pool never opens more than the threads can use.
POOL_SIZE = API_THREADS + WORKER_THREADS
POOL_OVERFLOW = 8  # a margin for anything else sharing the engine (migrations, the CLI)


class _HintingSQLiteCompiler(SQLiteCompiler):
    """SQLite's compiler, rendering the table hints SQLAlchemy's own drops: a statement's
    `with_hint(table, "INDEXED BY <index>", dialect_name="sqlite")` (store/reports.py)."""

    def get_from_hint_text(self, table: FromClause, text: str | None) -> str | None:
        return text


def make_engine(url: str, *, pool_size: int = POOL_SIZE) -> Engine:
    """An engine for the URL, its pool sized to the threads that use it.

    SQLite gets WAL so the API and worker can share one file.
    """
    pool = {"pool_size": pool_size, "max_overflow": POOL_OVERFLOW, "pool_timeout": 30}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit can't
            # corrupt the file, only the last commits before a power cut can be lost. A commit
            # then takes microseconds instead of an fsync, so the API's writes and the worker's
            # don't queue behind each other's fsyncs on the one writer lock.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.close()

        engine.dialect.statement_compiler = _HintingSQLiteCompiler
        return engine
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; spare users the "+psycopg" spelling.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, **pool)


class StorageUnwritable(Exception):
    """A directory the service keeps its data in can't be written: read-only, full or not ours."""


def check_writable(directory: Path) -> None:
    """Fail with StorageUnwritable, naming `directory` and the cause, unless a byte can be
    written and synced there. Started on a read-only or full disk, the API, the worker and the
    dev stack say so in one line instead of failing later with a traceback."""
    probe = directory / ".aftersales-write-check"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"x")
            os.fsync(fd)  # a full disk may only say so when the data must land
        finally:
            os.close(fd)
    except OSError as err:
        raise StorageUnwritable(
            f"{directory.resolve()} can't be written: {err.strerror or err}"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def check_database_writable(url: str) -> None:
    """`check_writable` for the directory of an SQLite database URL (others pass)."""
    if url.startswith("sqlite:///"):
        database = url.removeprefix("sqlite:///").split("?", 1)[0]
        if database and database != ":memory:":
            check_writable(Path(database).parent)


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest migration."""
    with _migration_lock(engine):
        _upgrade(engine)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """On a SQLite file, one process migrates at a time (PostgreSQL locks in `_upgrade`).

    pysqlite runs DDL outside any transaction, so an API and a worker started together both
    saw no schema and both created the tables: one failed at start-up ("table case already
    exists"). A lock file beside the database serializes them; the second finds head.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _upgrade(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # API and worker may start together; one migrates while the other waits.
            conn.execute(text("SELECT pg_advisory_xact_lock(7411)"))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise


T = TypeVar("T")
# A write for `write`: it adds and flushes in the session it is given, and never commits.
Job = Callable[[Session], T]


class GroupWriter:
    """Write transactions of one process's threads, committed together on SQLite.

    SQLite has one writer at a time. pysqlite begins a transaction at its first INSERT and
    waits for a held lock in SQLite's busy handler, which sleeps up to 100 ms between tries:
    with many opens at once, some lost every try and waited seconds (p99 7.4 s at 4 in
    flight, p50 151 ms), and each open paid for its own lock and commit. Here a thread
    queues its write; whichever thread holds the turn takes the lock once (BEGIN
    IMMEDIATE), runs every queued write in a savepoint of its own, and commits them all.
    A write that fails (a unique key another open holds) rolls back alone and raises in
    the thread that queued it; the others commit.

    Only the thread holding the turn writes, so the writer keeps one connection of its own
    for it, with SQLite's busy handler off for good (the lock is polled here): a pooled
    connection cost each batch a checkout, a reset and two PRAGMAs to turn the handler off
    and on again, half the CPU of a batch of one open.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queued: list[tuple[Job[Any], Future[Any]]] = []
        self._guard = threading.Lock()
        self._turn = threading.Lock()
        self._conn: Connection | None = None

    def write(self, job: Job[T]) -> T:
        """Run `job` in a committed write transaction (blocking); answers what it returns."""
        done: Future[T] = Future()
        with self._guard:
            self._queued.append((job, done))
        with self._turn:
            if not done.done():  # no earlier turn took it along: this one writes the queue
                with self._guard:
                    batch, self._queued = self._queued, []
                self._commit(batch)
        return done.result()

    def _connection(self) -> Connection:
        """The writer's own connection (with the turn held), opened on first use or after a
        failed batch dropped it."""
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
            _driver(self._conn).execute("PRAGMA busy_timeout=0")
        return self._conn

    def close(self) -> None:
        """Close the writer's connection once no batch is being written."""
        with self._turn:
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is being given up: a failure to close it too
                conn.close()

    def _commit(self, batch: list[tuple[Job[Any], Future[Any]]]) -> None:
        results: list[tuple[Future[Any], Any]] = []
        try:
            conn = self._connection()
            _begin_immediate(_driver(conn))
            with Session(bind=conn, expire_on_commit=False) as session:
                # Alone in its transaction, a write needs no savepoint of its own (two
                # statements less while the lock is held): if it fails, nothing commits.
                alone = len(batch) == 1
                for job, done in batch:
                    try:
                        with contextlib.nullcontext() if alone else session.begin_nested():
                            results.append((done, job(session)))
                    except Exception as err:  # this write's own failure, raised in its thread
                        done.set_exception(err)
                        if alone:
                            session.rollback()
                            return
                session.commit()
        except BaseException as err:  # the transaction failed: none of its writes happened
            # A connection left in an unknown state is not reused: the next batch opens one.
            self._drop_connection()
            # Every queued write hears of it, or its thread would wait for an answer forever.
            failure = err if isinstance(err, Exception) else RuntimeError(f"write aborted: {err!r}")
            for _, done in batch:
                if not done.done():
                    done.set_exception(failure)
            if failure is not err:
                raise
            return
        for done, result in results:
            done.set_result(result)


def _driver(conn: Connection) -> sqlite3.Connection:
    raw = conn.connection.driver_connection
    if not isinstance(raw, sqlite3.Connection):  # only SQLite engines write through here
        raise TypeError(f"not a SQLite connection: {type(raw).__name__}")
    return raw


# SQLite's own busy handler sleeps up to 100 ms between tries. The worker's many short write
# transactions keep taking the lock in those gaps, so a sleeping writer could wait seconds;
# polling from 1 ms, doubling up to 10 ms, finds the gaps between them without spinning.
LOCK_POLL_SECONDS = 0.001
LOCK_POLL_MAX_SECONDS = 0.01
LOCK_WAIT_SECONDS = 30.0


def _begin_immediate(raw: sqlite3.Connection) -> None:
    """Take SQLite's write lock on a connection whose busy handler is off, polling briskly."""
    if raw.in_transaction:  # a transaction an earlier failure left open: not ours to commit
        raw.rollback()
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = LOCK_POLL_SECONDS
    while True:
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, LOCK_POLL_MAX_SECONDS)


_WRITERS: weakref.WeakKeyDictionary[Engine, GroupWriter] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


def write(engine: Engine, job: Job[T], *, reads: Connection | None = None) -> T:
    """Run `job(session)` in a write transaction of its own and commit it; answers its result.

    On SQLite the process's concurrent writes share one transaction (GroupWriter); on
    PostgreSQL, which locks rows and not the database, each runs in its own. `reads`, a
    connection the caller read on first: on PostgreSQL the job runs in its transaction,
    so the reads and writes of one request take one connection (a checkout, a ping and a
    BEGIN less); on SQLite its read transaction ends here, and the group writes.
    """
    if engine.dialect.name != "sqlite":
        if reads is None:
            with session_scope(engine) as session:
                return job(session)
        if not reads.in_transaction():
            reads.begin()  # the job's writes join it; a session would roll its own back
        try:
            with Session(bind=reads, expire_on_commit=False) as session:
                result = job(session)
            reads.commit()
        except BaseException:
            reads.rollback()
            raise
        return result
    if reads is not None:
        reads.rollback()
    with _WRITERS_GUARD:
        writer = _WRITERS.get(engine)
        if writer is None:
            writer = _WRITERS[engine] = GroupWriter(engine)
            event.listen(engine, "engine_disposed", _forget_writer)
    return writer.write(job)


def _forget_writer(engine: Engine) -> None:
    """Close the engine's writer connection as the engine is disposed."""
    with _WRITERS_GUARD:
        writer = _WRITERS.pop(engine, None)
    if writer is not None:
        writer.close()
