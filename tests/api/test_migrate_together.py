"""An API and a worker started together both migrate the same new SQLite file: both succeed."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import inspect

from store.db import make_engine, migrate


def test_concurrent_migrations_of_one_sqlite_file_all_succeed(tmp_path: Path) -> None:
    # Separate engines, as separate processes would have; each thread's lock file descriptor
    # is its own, so the lock serializes threads as it does processes.
    engines = [make_engine(f"sqlite:///{tmp_path / 'fresh.db'}") for _ in range(3)]
    failures: list[BaseException] = []

    def start(engine_index: int) -> None:
        try:
            migrate(engines[engine_index])
        except Exception as err:  # what a start-up would have died of
            failures.append(err)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        assert "case" in inspect(engines[0]).get_table_names()
    finally:
        for engine in engines:
            engine.dispose()
