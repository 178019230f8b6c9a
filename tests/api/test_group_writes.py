"""store.db.write: concurrent writes of one process commit together on SQLite, and a write
that breaks a unique key rolls back alone, raising in its own thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from store import db
from store.db import make_engine, migrate
from store.tables import CaseClaim, IdempotencyKey, utcnow


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite database at the newest schema."""
    engine = make_engine(f"sqlite:///{tmp_path / 'writes.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def _claim(case_id: str, sku: str) -> db.Job[None]:
    def job(session: Session) -> None:
        session.add(
            IdempotencyKey(key=case_id, request_hash="h", case_id=case_id, created_at=utcnow())
        )
        session.add(CaseClaim(type="return", order_id="SO-1", sku=sku, case_id=case_id))
        session.flush()

    return job


def test_concurrent_writes_commit_and_a_conflict_fails_alone(engine: Engine) -> None:
    # 12 threads; three of them claim an item another thread claims too.
    skus = [f"SKU-{i}" for i in range(9)] + ["SKU-0", "SKU-1", "SKU-2"]
    start = threading.Barrier(len(skus))
    outcomes: dict[str, str] = {}

    def run(index: int, sku: str) -> None:
        start.wait()
        try:
            db.write(engine, _claim(f"C-{index:02d}", sku))
            outcomes[f"C-{index:02d}"] = "ok"
        except IntegrityError:
            outcomes[f"C-{index:02d}"] = "conflict"

    threads = [threading.Thread(target=run, args=(i, sku)) for i, sku in enumerate(skus)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()).count("conflict") == 3
    with Session(engine) as session:
        claims = session.exec(select(CaseClaim)).all()
        keys = set(session.exec(select(IdempotencyKey.key)).all())
    # Each item once, and a failed write left nothing behind: not even its key.
    assert sorted(c.sku for c in claims) == sorted(set(skus))
    assert keys == {case_id for case_id, outcome in outcomes.items() if outcome == "ok"}


def test_a_write_answers_what_its_job_returns(engine: Engine) -> None:
    def count_after_insert(session: Session) -> int:
        _claim("C-1", "A")(session)
        return session.exec(select(func.count()).select_from(CaseClaim)).one()

    assert db.write(engine, count_after_insert) == 1


def test_a_write_waits_out_another_process_lock_and_leaves_the_connection_as_it_was(
    engine: Engine, tmp_path: Path
) -> None:
    # Another process (here: a plain connection of our own) holds SQLite's write lock.
    other = sqlite3.connect(tmp_path / "writes.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    done = threading.Event()

    def write() -> None:
        db.write(engine, _claim("C-1", "A"))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(0.2)  # it waits for the lock, it doesn't fail
    other.execute("COMMIT")
    assert done.wait(10)
    writer.join()
    other.close()
    # Polled with SQLite's own wait off; every pooled connection has its usual wait back.
    # (Three at once: the pool hands out its idle ones, the writer's among them.)
    with engine.connect() as a, engine.connect() as b, engine.connect() as c:
        for conn in (a, b, c):
            timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            assert timeout == db.BUSY_TIMEOUT_MS
    with Session(engine) as session:
        assert [c.case_id for c in session.exec(select(CaseClaim)).all()] == ["C-1"]


def test_a_lone_write_that_fails_leaves_nothing_and_the_next_one_commits(engine: Engine) -> None:
    db.write(engine, _claim("C-1", "A"))
    # Alone in its transaction: its key is written before the item it can't have, and the
    # key must not stay.
    with pytest.raises(IntegrityError):
        db.write(engine, _claim("C-2", "A"))
    db.write(engine, _claim("C-3", "B"))
    with Session(engine) as session:
        keys = set(session.exec(select(IdempotencyKey.key)).all())
        claims = {(c.sku, c.case_id) for c in session.exec(select(CaseClaim)).all()}
    assert keys == {"C-1", "C-3"}
    assert claims == {("A", "C-1"), ("B", "C-3")}
