"""`aftersales dev`: the Temporal dev server with its UI, the worker and the API in one process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvicorn
from temporalio.client import Client

from activities.connectors import connectors_from_settings
from aftersales.binaries import find
from aftersales.settings import Settings
from aftersales.temporal import connect, register_search_attributes
from aftersales.worker import build_worker
from api.app import create_app
from domain.policy import load_policy
from store.db import make_engine, migrate


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def start_temporal(*, data_dir: Path, port: int, ui_port: int) -> asyncio.subprocess.Process:
    """Start the real Temporal dev server (SQLite in the data dir) and wait until it answers."""
    if _port_open(port):
        raise SystemExit(
            f"Port {port} is taken; is another Temporal server running? Use --temporal-port."
        )
    process = await asyncio.create_subprocess_exec(
        find("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=(data_dir / "temporal.log").open("ab"),
    )
    for _ in range(300):
        if process.returncode is not None:
            raise SystemExit(f"Temporal exited early; see {data_dir / 'temporal.log'}")
        if _port_open(port):
            return process
        await asyncio.sleep(0.1)
    process.terminate()
    raise SystemExit("Temporal did not start within 30 s")


async def _connect_retrying(settings: Settings) -> Client:
    for attempt in range(50):
        try:
            return await connect(settings)
        except RuntimeError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.2)
    raise AssertionError("unreachable")


def banner(settings: Settings) -> str:
    """What the dev stack prints: where everything is and the dev keys."""
    keys = "\n".join(f"    {role:<12} {key}" for key, role in settings.keys_by_token().items())
    return (
        "\naftersales dev stack is up\n"
        f"  API          http://{settings.api_host}:{settings.api_port}  (docs: /docs)\n"
        f"  Temporal UI  http://localhost:{settings.dev_ui_port}\n"
        f"  Temporal     {settings.temporal_address}  namespace {settings.temporal_namespace}\n"
        f"  Data         {settings.data_dir.resolve()}\n"
        f"  API keys (Authorization: Bearer <key>):\n{keys}\n"
        "  Ctrl-C stops everything; cases survive a restart.\n"
    )


async def run_dev(settings: Settings) -> None:
    """Run the whole stack until Ctrl-C, then stop every part cleanly."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    policy = load_policy(settings.policy)
    temporal = await start_temporal(
        data_dir=settings.data_dir, port=settings.dev_temporal_port, ui_port=settings.dev_ui_port
    )
    connectors = connectors_from_settings(settings)
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        client = await _connect_retrying(settings)
        await register_search_attributes(client)
        app = create_app(settings, client=client, engine=engine, policy_=policy)
        server = uvicorn.Server(
            uvicorn.Config(app, host=settings.api_host, port=settings.api_port, log_level="warning")
        )
        with ThreadPoolExecutor(max_workers=16) as executor:
            worker = build_worker(
                client, settings=settings, engine=engine, connectors=connectors, executor=executor
            )
            async with worker:
                print(banner(settings), flush=True)
                # uvicorn owns Ctrl-C: when it returns, the worker and Temporal follow.
                await server.serve()
    finally:
        await connectors.aclose()
        engine.dispose()
        if temporal.returncode is None:
            temporal.terminate()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(temporal.wait(), timeout=15)
            if temporal.returncode is None:
                temporal.kill()
