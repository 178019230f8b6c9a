"""One real stack for chaos: the Temporal dev server, an `aftersales api` and an `aftersales
worker` as separate processes, the HTTP peers and the SMTP sink in this process, on SQLite or
PostgreSQL, with a policy file whose timers run out in seconds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from store.db import make_engine, migrate
from tests.chaos.procs import Service, api_service, temporal_service, worker_service
from tests.support.dev_stack import clean_env
from tests.support.http_peers import Peers
from tests.support.mail import MailSink
from tests.support.ports import free_port

# Not the dev stack's keys and secrets: the API may refuse those outside `aftersales dev`.
KEYS = {
    "storefront": "chaos-storefront-key",
    "agent": "chaos-agent-key",
    "integration": "chaos-integration-key",
    "operator": "chaos-operator-key",
}
SECRET = "chaos-webhook-secret"
CARRIER_SECRET = "chaos-carrier-secret"
OPS_EMAIL = "ops@chaos.example"
# Cases run to their end in seconds: the survey follows the resolution at once and closes a
# second later. A pickup nobody reports is booked again after a few seconds, and a refund the
# provider left pending escalates after two (the deadlines a partner outage makes pass).
POLICY = """\
[timers]
follow_up = "1s"
survey = "1s"
carrier_pickup = "{carrier_pickup}"
refund = "2s"
sms_nudge = "0s"
"""


@dataclass
class Partners:
    """Payment provider, carrier and storefront (webhooks, SMS, store credit), each its own
    server on its own port, so each can be down while the others answer."""

    payment: Peers
    carrier: Peers
    storefront: Peers

    def all(self) -> dict[str, Peers]:
        """Each partner by name."""
        return {"payment": self.payment, "carrier": self.carrier, "webhook": self.storefront}


@dataclass
class Stack:
    """The processes and peers of one chaos stack; `api_url` is where the API answers."""

    data_dir: Path
    env: dict[str, str]
    partners: Partners
    mail: MailSink
    temporal: Service
    api: Service
    worker: Service
    api_port: int
    database_url: str
    extra: list[Service] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def services(self) -> list[Service]:
        """Every process of the stack, in start order."""
        return [self.temporal, self.worker, self.api, *self.extra]

    def client(self, *, timeout: float = 30, connections: int = 64) -> httpx.AsyncClient:
        """An HTTP client for the API."""
        return httpx.AsyncClient(
            base_url=self.api_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=connections),
        )


def stack_env(
    *,
    data_dir: Path,
    partners: Partners,
    mail: MailSink,
    database_url: str,
    temporal_port: int,
    api_port: int,
    policy: Path,
) -> dict[str, str]:
    """Every setting the API and the worker read, spelled out."""
    env = clean_env()
    env.update(
        {
            "AFTERSALES_DATABASE_URL": database_url,
            "AFTERSALES_POLICY": str(policy),
            "AFTERSALES_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
            "AFTERSALES_TASK_QUEUE": "aftersales-chaos",
            "AFTERSALES_API_HOST": "127.0.0.1",
            "AFTERSALES_API_PORT": str(api_port),
            "AFTERSALES_PUBLIC_URL": f"http://127.0.0.1:{api_port}",
            "AFTERSALES_API_KEYS": ",".join(f"{role}:{key}" for role, key in KEYS.items()),
            "AFTERSALES_PAYMENT_URL": partners.payment.url,
            "AFTERSALES_CARRIER_URL": partners.carrier.url,
            "AFTERSALES_WEBHOOK_URL": partners.storefront.webhook_url,
            "AFTERSALES_SMS_URL": partners.storefront.sms_url,
            "AFTERSALES_STOREFRONT_URL": partners.storefront.url,
            "AFTERSALES_SMTP_URL": mail.url,
            "AFTERSALES_WEBHOOK_SECRET": SECRET,
            "AFTERSALES_CARRIER_WEBHOOK_SECRET": CARRIER_SECRET,
            "AFTERSALES_OPS_EMAIL": OPS_EMAIL,
            "AFTERSALES_DATA_DIR": str(data_dir),
            # A partner that stopped answering shows within seconds, not the default ten.
            "AFTERSALES_CONNECTOR_TIMEOUT_SECONDS": "5",
        }
    )
    # The SDK must never fetch a server or anything else from the network.
    env.pop("TEMPORAL_ADDRESS", None)
    return env


@contextlib.asynccontextmanager
async def running_stack(
    workdir: Path,
    *,
    database_url: str | None = None,
    data_dir: Path | None = None,
    carrier_pickup: str = "3s",
) -> AsyncIterator[Stack]:
    """Start every part of a stack under `workdir` (the app's SQLite data in `data_dir`, the
    workdir by default); every process is gone when the block ends, however it ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or workdir
    policy = workdir / "policy.toml"
    policy.write_text(POLICY.format(carrier_pickup=carrier_pickup))
    database_url = database_url or f"sqlite:///{data_dir / 'aftersales.db'}"
    # Migrated once here, so the API and the worker never race to do it.
    engine = make_engine(database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    partners = Partners(
        payment=Peers(secret=SECRET), carrier=Peers(secret=SECRET), storefront=Peers(secret=SECRET)
    )
    with partners.payment, partners.carrier, partners.storefront:
        mail = MailSink().start()
        try:
            temporal_port, api_port = free_port(), free_port()
            env = stack_env(
                data_dir=data_dir,
                partners=partners,
                mail=mail,
                database_url=database_url,
                temporal_port=temporal_port,
                api_port=api_port,
                policy=policy,
            )
            stack = Stack(
                data_dir=data_dir,
                env=env,
                partners=partners,
                mail=mail,
                temporal=temporal_service(workdir, temporal_port, env),
                api=api_service(workdir, api_port, env),
                worker=worker_service(workdir, env),
                api_port=api_port,
                database_url=database_url,
            )
            try:
                await stack.temporal.start()
                # Spawned together: their start-ups (imports, connections) overlap.
                stack.worker.spawn()
                stack.api.spawn()
                await stack.worker.wait_ready()
                await stack.api.wait_ready()
                yield stack
            finally:
                for service in reversed(stack.services):
                    service.stop()
        finally:
            mail.stop()


def log_tails(stack: Stack) -> str:
    """The end of every process's output, for a failure message."""
    return "\n".join(f"--- {s.name}\n{s.tail(1500)}" for s in stack.services)
