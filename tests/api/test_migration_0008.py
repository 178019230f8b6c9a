"""Migration 0008 on both databases: stored customer tokens become their SHA-256, and the
look-up goes by digest, never comparing the raw token."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, inspect, text
from sqlmodel import Session

from store import service
from store.db import migrate
from tests.api.test_migration_0006 import _insert
from tests.api.test_tracking_migration import _upgrade, engine  # noqa: F401  (fixture)
from tests.test_dev_secrets import Tripwire


def test_0008_keeps_tokens_as_digests_and_finds_cases_by_them(engine: Engine) -> None:  # noqa: F811
    _upgrade(engine, "0007")
    _insert(engine, "R-OLDTOKEN1", "awaiting_review", None)
    _insert(engine, "R-OLDTOKEN2", "closed", None)
    migrate(engine)
    assert "purge_audit" in inspect(engine).get_table_names()
    with engine.connect() as conn:
        stored = dict(conn.execute(text('SELECT id, token FROM "case"')).all())  # type: ignore[arg-type]
    assert stored == {
        case_id: hashlib.sha256(f"tok-{case_id}".encode()).hexdigest() for case_id in stored
    }
    with Session(engine) as session:
        # The raw token is never hashed as a key nor compared: only its digest is looked up.
        found = service.case_for_token(session, token=Tripwire("tok-R-OLDTOKEN1"))
        assert found is not None and found.id == "R-OLDTOKEN1"
        assert service.case_for_token(session, token="tok-R-OLDTOKEN") is None
        # A digest sent as a token opens nothing: it would be hashed again.
        assert service.case_for_token(session, token=stored["R-OLDTOKEN2"]) is None
