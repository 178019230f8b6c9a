"""Alembic environment: runs on the connection the caller hands over in the config."""

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables on the metadata)

config = context.config


def _run(connection: object) -> None:
    # SQLite can't ALTER most things in place; batch mode copies the table instead.
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        _run(conn)
