"""The `aftersales` command: dev stack, worker, API, demo and cluster setup."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from aftersales.agents import agents_app
from aftersales.policy import policy_app
from config.settings import API_SECRETS, WORKER_SECRETS, DevSecretsRefused, Settings

app = typer.Typer(help="Every after-sales case of an online shop as a durable Temporal workflow.")

# Below the dev stack's CHILD_GRACE (aftersales/dev.py), so the API stops by itself in time.
API_GRACE_SECONDS = 3
API_KEEP_ALIVE_SECONDS = 65


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _refuse_dev_secrets(settings: Settings, part: str, names: tuple[str, ...]) -> None:
    """Exit 1 with the reason, before anything starts, if `part` would run on dev secrets."""
    try:
        settings.refuse_dev_secrets(part, names)
    except DevSecretsRefused as err:
        typer.echo(f"aftersales {part.lower()}: {err}", err=True)
        raise typer.Exit(1) from None


def _storage_or_exit(command: str, settings: Settings) -> None:
    """Exit 1 with one line when the SQLite database's directory can't be written."""
    from store.db import StorageUnwritable, check_database_writable

    try:
        check_database_writable(settings.database_url)
    except StorageUnwritable as err:
        typer.echo(f"aftersales {command}: the database directory {err}", err=True)
        raise typer.Exit(1) from None


@app.command()
def dev(
    api_port: Annotated[
        int | None, typer.Option(help="API port [AFTERSALES_API_PORT, 8000]")
    ] = None,
    temporal_port: Annotated[
        int | None, typer.Option(help="Temporal port [AFTERSALES_DEV_TEMPORAL_PORT, 7233]")
    ] = None,
    ui_port: Annotated[
        int | None, typer.Option(help="Temporal UI port [AFTERSALES_DEV_UI_PORT, 8233]")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where state lives [AFTERSALES_DATA_DIR, .aftersales]")
    ] = None,
) -> None:
    """Run the whole stack: Temporal dev server with UI, worker and API on SQLite."""
    from aftersales.dev import DevStackError, run_dev

    base = _settings(
        api_port=api_port, dev_temporal_port=temporal_port, dev_ui_port=ui_port, data_dir=data_dir
    )
    settings = _settings(
        **{
            **base.model_dump(),
            "temporal_address": f"127.0.0.1:{base.dev_temporal_port}",
            # The dev stack's children may run on the dev keys it prints.
            "dev_mode": True,
            # The dev database sits with the rest of the dev state unless told otherwise.
            "database_url": os.environ.get("AFTERSALES_DATABASE_URL")
            or f"sqlite:///{base.data_dir / 'aftersales.db'}",
            # Status links point at this API unless a public URL is configured.
            "public_url": os.environ.get("AFTERSALES_PUBLIC_URL")
            or f"http://localhost:{base.api_port}",
        }
    )
    try:
        code = run_dev(settings)
    except DevStackError as err:
        typer.echo(f"aftersales dev: {err}", err=True)
        code = 1
    raise typer.Exit(code)


@app.command()
def worker(
    ready_file: Annotated[
        Path | None,
        typer.Option(hidden=True, help="Create this file once the worker polls (aftersales dev)"),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="Lowest level logged: debug, info, warning or error")
    ] = "info",
) -> None:
    """Run a worker against the configured Temporal cluster; SIGINT or SIGTERM stops it."""
    import logging

    from aftersales.logs import configure_logging
    from aftersales.worker import run_worker

    settings = Settings()
    _storage_or_exit("worker", settings)
    _refuse_dev_secrets(settings, "worker", WORKER_SECRETS)
    configure_logging(settings, "worker", level=logging.getLevelName(log_level.upper()))
    asyncio.run(run_worker(settings, ready_file=ready_file))
    sys.stdout.flush()
    sys.stderr.flush()
    # As in temporal-setup: the SDK's runtime threads can crash the interpreter at exit
    # (sdk-python#300); the worker has shut down cleanly, so skip interpreter teardown.
    os._exit(0)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="[AFTERSALES_API_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="[AFTERSALES_API_PORT]")] = None,
    log_level: Annotated[
        str, typer.Option(help="uvicorn log level; warning hides the access log")
    ] = "info",
) -> None:
    """Serve the HTTP API against the configured Temporal cluster and database."""
    import uvicorn

    from aftersales.logs import uvicorn_log_config
    from api.app import create_app
    from config.tracing import configure_tracing, shutdown

    settings = _settings(api_host=host, api_port=port)
    _storage_or_exit("api", settings)
    _refuse_dev_secrets(settings, "API", API_SECRETS)
    tracing = configure_tracing("aftersales-api")
    config = uvicorn.Config(
        create_app(settings, own_process=True, tracer_provider=tracing),
        host=settings.api_host,
        port=settings.api_port,
        log_config=uvicorn_log_config(settings, "api", log_level),
        log_level=log_level,
        # uvloop and httptools (dependencies of the project): measured at 4 opens in flight,
        # the API used 9.5 ms of CPU per open with them against 12.5 ms with asyncio and h11.
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        # In-flight requests get this long after SIGTERM; a stop never waits on a slow one.
        timeout_graceful_shutdown=API_GRACE_SECONDS,
        # A kept-alive connection stays open longer than its clients and proxies keep theirs
        # (60 s is the usual proxy idle timeout). With uvicorn's 5 s a client that took a
        # moment to reuse one sent its request on a connection the server was closing, and
        # got no answer: 3 of 400 opens at 200 in flight on a busy machine (ReadError).
        timeout_keep_alive=API_KEEP_ALIVE_SECONDS,
    )
    # uvicorn re-raises the Ctrl-C it handled once it has shut down cleanly.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
    # The spans still batched go to the collector before the process ends.
    shutdown(tracing)


@app.command("temporal-setup")
def temporal_setup() -> None:
    """Register the case search attributes on the configured namespace (idempotent)."""
    from aftersales.temporal import register_search_attributes
    from config.temporal import connect

    async def run() -> list[str]:
        return await register_search_attributes(await connect(Settings()))

    added = asyncio.run(run())
    typer.echo(f"added: {', '.join(added)}" if added else "search attributes already registered")
    sys.stdout.flush()
    # The SDK's runtime threads can crash the interpreter at exit (sdk-python#300); the work is
    # done, so leave without running interpreter teardown.
    os._exit(0)


@app.command()
def demo(
    api_url: Annotated[str, typer.Option(help="The running API")] = "http://127.0.0.1:8000",
    cases: Annotated[int, typer.Option(min=1, max=50, help="How many cases to play")] = 6,
) -> None:
    """Play storefront, agent, customer, carrier and warehouse against a running stack."""
    from aftersales.demo import play

    asyncio.run(play(api_url=api_url, cases=cases, settings=Settings()))


app.add_typer(agents_app, name="agents")
app.add_typer(policy_app, name="policy")

cases_app = typer.Typer(help="Cases: a customer's data-deletion request.")
app.add_typer(cases_app, name="cases")


@cases_app.command("purge")
def cases_purge(
    customer: Annotated[str, typer.Option(help="The customer ID whose data to delete")],
    by: Annotated[
        str | None, typer.Option(help="Who purges, for the audit entry [your login name]")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="The request's reference (a ticket number), audited")
    ] = None,
    delete_history: Annotated[
        bool, typer.Option(help="Also delete the cases' workflow histories in Temporal now")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="List the cases; change nothing")] = False,
) -> None:
    """Delete a customer's cases from the projection, terminating their open workflows, and
    keep an audit entry (without personal data)."""
    import getpass

    from aftersales.purge import purge_customer
    from config.temporal import connect
    from store.db import make_engine, migrate

    settings = Settings()
    actor = by or getpass.getuser()
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        migrate(engine)

        async def run() -> Any:
            return await purge_customer(
                await connect(settings),
                engine,
                customer_id=customer,
                actor=actor,
                reference=reference,
                delete_history=delete_history,
                dry_run=dry_run,
            )

        result = asyncio.run(run())
    finally:
        engine.dispose()
    cases = ", ".join(result.purged.case_ids) or "none"
    if dry_run:
        typer.echo(f"would purge {len(result.purged.case_ids)} cases: {cases}")
    else:
        rows = ", ".join(f"{table} {n}" for table, n in result.purged.rows.items() if n)
        typer.echo(
            f"purged {len(result.purged.case_ids)} cases: {cases}\n"
            f"rows deleted: {result.purged.total} ({rows or 'none'})\n"
            f"workflows terminated: {len(result.terminated)}\n"
            f"histories deleted: {len(result.deleted_histories)}"
            + ("" if delete_history else " (kept until the namespace's retention)")
            + f"\naudit entry: {result.purged.audit_id}"
        )
    sys.stdout.flush()
    # The SDK's runtime threads can crash the interpreter at exit (sdk-python#300).
    os._exit(0)


notifications_app = typer.Typer(help="Customer and operations messages.")
app.add_typer(notifications_app, name="notifications")


@notifications_app.command("preview")
def notifications_preview(
    message: Annotated[str, typer.Argument(help="Message name, e.g. case_approved")],
    locale: Annotated[str, typer.Option(help="en, zh-TW or zh-CN")] = "en",
    case_type: Annotated[
        str, typer.Option(help="return, exchange, refund, repair or complaint")
    ] = "return",
    html: Annotated[
        Path | None, typer.Option(help="Write the HTML body to this file instead")
    ] = None,
) -> None:
    """Render a message for a sample case: subject and text, or the HTML to a file."""
    from domain.models import Locale
    from notifications.render import MESSAGES, render_message
    from notifications.samples import CASE_KINDS, preview_context

    # Usage errors (exit code 2) name what is known, so a typo is fixed at a glance.
    if message not in MESSAGES:
        raise typer.BadParameter(
            f"unknown message {message!r}; known: {', '.join(MESSAGES)}", param_hint="MESSAGE"
        )
    known_locales = [loc.value for loc in Locale]
    if locale not in known_locales:
        raise typer.BadParameter(
            f"unknown locale {locale!r}; known: {', '.join(known_locales)}",
            param_hint="--locale",
        )
    if case_type not in CASE_KINDS:
        raise typer.BadParameter(
            f"unknown case type {case_type!r}; known: {', '.join(CASE_KINDS)}",
            param_hint="--case-type",
        )
    rendered = render_message(
        message,
        locale,
        preview_context(message, Locale(locale), case_type),
        templates_dir=Settings().templates_dir,
    )
    if html is not None:
        html.write_text(rendered.html, encoding="utf-8")
        typer.echo(f"wrote {html}")
        return
    typer.echo(f"Subject: {rendered.subject}\n")
    typer.echo(rendered.text, nl=False)


if __name__ == "__main__":
    app()
