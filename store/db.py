"""Database engine, sessions and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"

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
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; spare users the "+psycopg" spelling.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, **pool)


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest migration."""
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
