"""Serve an extra API app over real HTTP inside a test: another Temporal client, queue or peer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn
from fastapi import FastAPI

from aftersales.cli import API_KEEP_ALIVE_SECONDS
from tests.support.ports import free_port


class _Server(uvicorn.Server):
    """uvicorn inside the test loop; Ctrl-C stays pytest's, not the server's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(
    app: FastAPI, *, port: int | None = None, access_log: bool = False
) -> AsyncIterator[str]:
    """Run the app under uvicorn on `port` (a free one by default) for the block; yields its
    base URL. `access_log`: a line per request on the `uvicorn.access` logger."""
    port = port or free_port()
    server = _Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_level="warning",
            access_log=access_log,
            # A request still waiting on a stuck case must not hold the teardown.
            timeout_graceful_shutdown=5,
            # As `aftersales api` serves: longer than the client keeps an idle connection
            # (httpx: 5 s, as uvicorn's default), so a reused one is never being closed.
            timeout_keep_alive=API_KEEP_ALIVE_SECONDS,
        )
    )
    task = asyncio.create_task(server.serve())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not server.started:
        if task.done():
            task.result()  # re-raise why it stopped
            raise RuntimeError("uvicorn exited before it started")
        if loop.time() > deadline:
            raise RuntimeError("uvicorn did not start in 30s")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
