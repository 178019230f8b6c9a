"""A real worker in its own process, for tests that kill one mid-delivery.

Run as `python -m tests.support.crash_worker`; configured by the usual `AFTERSALES_*`
variables. With `AFTERSALES_TEST_CRASH_AFTER_SEND=<message>` the process dies
(`os._exit(1)`, no cleanup, like a power cut) right after the server accepted that message
and before the delivery log records it. The variable is read here only, never by the product.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from activities.connectors import connectors_from_settings
from activities.notify import AfterSend
from aftersales.worker import build_worker
from config.settings import Settings
from config.temporal import connect
from store.db import make_engine

CRASH_ENV = "AFTERSALES_TEST_CRASH_AFTER_SEND"


def crash_hook(message: str | None) -> AfterSend | None:
    """A hook that kills the process after `message` was accepted."""
    if not message:
        return None

    def after_send(notification_id: str, sent: str) -> None:
        if sent == message:
            print(f"crashing after {notification_id}", flush=True)
            os._exit(1)

    return after_send


async def main() -> None:
    settings = Settings()
    client = await connect(settings)
    engine = make_engine(settings.database_url)
    connectors = connectors_from_settings(settings)
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(
            client,
            settings=settings,
            engine=engine,
            connectors=connectors,
            executor=executor,
            after_send=crash_hook(os.environ.get(CRASH_ENV)),
        )
        print("worker ready", flush=True)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
