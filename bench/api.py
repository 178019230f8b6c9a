"""The API benchmark: opens through `POST /v1/cases` against a bare `start_workflow`, and reads
at 100k cases, on SQLite and on PostgreSQL.

`python -m bench.api` starts one Temporal dev server, the service's worker and its API as
separate processes (as `aftersales worker` and `aftersales api` run them), and measures:

- opens per second through the API against `client.start_workflow` of the same case workflow
  with the same input, in alternating rounds at 4 and at 50 in flight (the worker runs in both,
  so both pay for the cases they start);
- errors with 50 and 200 opens in flight;
- `GET /v1/cases/{id}` and a list page with 100k cases in the database and a worker that has
  never run those cases (no workflow cache can help), on SQLite and on PostgreSQL.

The figures are appended to docs/benchmarks.md under "API". They are not tests: nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

MARKER = "<!-- api-bench: written by `python -m bench.api` -->"
# The Scale section follows the API section (bench/scale.py writes it).
SCALE_MARKER = "<!-- scale-bench: written by `python -m bench.scale` -->"
STOREFRONT = "bench-storefront"
OPERATOR = "bench-operator"
SEEDED = 100_000
OPENS_PER_ROUND = 150
ROUNDS = 2


def _root() -> Path:
    return Path(__file__).resolve().parent.parent


def _free_port() -> int:
    from tests.support.mail import free_port

    return free_port()


def _env(
    *, address: str, database_url: str, data_dir: Path, queue: str, port: int
) -> dict[str, str]:
    """The service's environment for one bench process: sandbox connectors, no SMTP."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSALES_")}
    # The `aftersales` script imports the package the venv installed, which may be another
    # checkout (an editable install of the main worktree): this tree's code goes first, so
    # the bench measures the code it was run from.
    paths = [str(_root()), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        AFTERSALES_TEMPORAL_ADDRESS=address,
        AFTERSALES_DATABASE_URL=database_url,
        AFTERSALES_DATA_DIR=str(data_dir),
        AFTERSALES_TASK_QUEUE=queue,
        AFTERSALES_API_HOST="127.0.0.1",
        AFTERSALES_API_PORT=str(port),
        AFTERSALES_API_KEYS=f"storefront:{STOREFRONT},operator:{OPERATOR}",
        # Sandbox connectors and their dev secrets: a bench is no deployment.
        AFTERSALES_DEV_MODE="true",
    )
    return env


@contextlib.asynccontextmanager
async def process(
    args: list[str], env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A service process for the duration of the block, stopped with SIGTERM (then SIGKILL)."""
    child = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=_root(), stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    try:
        yield child
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), timeout=15)
            except TimeoutError:
                child.kill()
                await child.wait()


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, all threads) the processes have used so far.

    Read from /proc, so it counts only these processes whatever else the machine runs.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            # Fields after the command name, which may hold spaces: utime and stime are the
            # 14th and 15th fields of the line.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def family(pid: int) -> list[int]:
    """The process and its descendants (an API serving with several worker processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
    found = [pid]
    for candidate in found:
        found += [child for child, parent in parents.items() if parent == candidate]
    return found


# Quiet: the worker and Temporal together used under 10% of a core over half a second.
QUIET_WINDOW_SECONDS = 0.5
QUIET_SHARE = 0.10
QUIET_WAIT_SECONDS = 120.0


async def until_quiet(pids: list[int]) -> None:
    """Wait until these processes are nearly idle (the cases started so far have run as far
    as they can without a person), or QUIET_WAIT_SECONDS at most."""
    deadline = time.monotonic() + QUIET_WAIT_SECONDS
    used = cpu_seconds(pids)
    while time.monotonic() < deadline:
        await asyncio.sleep(QUIET_WINDOW_SECONDS)
        now = cpu_seconds(pids)
        if now - used < QUIET_SHARE * QUIET_WINDOW_SECONDS:
            return
        used = now


def _script() -> str:
    return str(Path(sys.executable).parent / "aftersales")


async def _until_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API at {url} did not start")
            await asyncio.sleep(0.2)


# ---- opens ----------------------------------------------------------------------------


@dataclass
class Opens:
    """One round of opens: how many, how long, how each went."""

    label: str
    in_flight: int
    # The database the service's API and worker ran on.
    database: str = "SQLite"
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # CPU seconds each process used during the round: "api", "worker", "temporal", "bench";
    # and from the round's start until the worker and Temporal were quiet again.
    cpu: dict[str, float] = field(default_factory=dict)
    until_quiet: dict[str, float] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        """Opens answered per second of wall time."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def _gated(count: int, in_flight: int, one: Callable[[int], Awaitable[None]]) -> float:
    gate = asyncio.Semaphore(in_flight)

    async def run(index: int) -> None:
        async with gate:
            await one(index)

    started = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(count)))
    return time.perf_counter() - started


def _body(now: datetime) -> dict[str, Any]:
    from tests.support.factory import request_body

    return request_body(now=now)


class Connections:
    """Keep-alive HTTP/1.1 connections to the API, as few bytes of Python per request as the
    bare side's Temporal client spends (its work is in Rust).

    On two shared cores the bench's own client competes with the servers it measures: httpx
    cost about 10 ms of CPU per request here against 2.5 ms for a `start_workflow`, so the API
    side paid for its client too. Enough of HTTP for our JSON answers: a status line, headers,
    a Content-Length body.
    """

    def __init__(self, url: str) -> None:
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes, headers: str) -> int:
        """POST `body` as JSON; the answer's status (its body is read and dropped)."""
        reader, writer = (
            self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
        )
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length, close = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
            elif name == "transfer-encoding":
                raise RuntimeError(f"the bench reads Content-Length bodies only, not {value}")
        await reader.readexactly(length)
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status

    async def aclose(self) -> None:
        """Close every idle connection."""
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def api_opens(url: str, count: int, in_flight: int) -> Opens:
    """`count` opens through the API with at most `in_flight` at once."""
    result = Opens("API", in_flight)
    now = datetime.now(UTC)
    # Built before the clock starts, as the bare side builds its inputs.
    bodies = [json.dumps(_body(now)).encode() for _ in range(count)]
    auth = f"Authorization: Bearer {STOREFRONT}\r\n"
    http = Connections(url)

    async def one(index: int) -> None:
        started = time.perf_counter()
        try:
            status = await http.post("/v1/cases", bodies[index], auth)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as err:
            result.errors.append(type(err).__name__)
            return
        if status != 201:
            result.errors.append(str(status))
            return
        result.latencies.append(time.perf_counter() - started)

    try:
        result.seconds = await _gated(count, in_flight, one)
    finally:
        await http.aclose()
    return result


AS_API = "bare start_workflow, as the API starts"


async def bare_opens(
    client: Any, queue: str, count: int, in_flight: int, *, as_api: bool = False
) -> Opens:
    """`count` bare `start_workflow` calls of the same workflow and input the API would start.

    `as_api`: with everything else the API's start sends (docs/architecture.md): the static
    summary and details the Temporal UI lists, REJECT_DUPLICATE, and an input that says the
    case's row is written (`recorded`, so the worker's first write sends only what changed).
    """
    from dataclasses import replace

    from temporalio.common import WorkflowIDReusePolicy

    from domain import opening
    from tests.support.factory import case_input
    from workflows.returns import ReturnWorkflow

    result = Opens(AS_API if as_api else "bare start_workflow", in_flight)
    now = datetime.now(UTC)
    inputs = [case_input(now=now) for _ in range(count)]
    extras: list[dict[str, Any]] = [{} for _ in inputs]
    if as_api:
        inputs = [replace(case, recorded=True) for case in inputs]
        extras = [
            {
                "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
                "static_summary": opening.summary(case.case_id, case.request, case.decision),
                "static_details": opening.details(case.case_id, case.request, case.decision),
            }
            for case in inputs
        ]

    async def one(index: int) -> None:
        started = time.perf_counter()
        try:
            await client.start_workflow(
                ReturnWorkflow.run,
                inputs[index],
                id=inputs[index].case_id,
                task_queue=queue,
                **extras[index],
            )
        except Exception as err:  # a bench reports every failure; none is expected
            result.errors.append(type(err).__name__)
            return
        result.latencies.append(time.perf_counter() - started)

    result.seconds = await _gated(count, in_flight, one)
    return result


# ---- reads at 100k cases --------------------------------------------------------------


def seed(database_url: str, total: int) -> int:
    """Fill the case table to `total` rows by cloning a real opened case; answers rows added."""
    from sqlalchemy import func, insert, select

    from store.db import make_engine
    from store.projection import DEADLINE_OUTCOMES, REFUND_ITEMS
    from store.tables import Case

    engine = make_engine(database_url)
    table = Case.__table__  # type: ignore[attr-defined]
    deadlines: list[dict[str, Any]] = []
    refunds: list[dict[str, Any]] = []
    with engine.begin() as conn:
        have = conn.execute(select(func.count()).select_from(table)).scalar_one()
        template = conn.execute(select(table).limit(1)).mappings().first()
        if template is None:
            raise RuntimeError("no case to clone: open one first")
        template = dict(template)
        statuses = ["open", "awaiting_review", "awaiting_shipment", "in_transit", "inspecting",
                    "refund_pending", "resolved", "closed", "rejected"]  # fmt: skip
        queues = ["customer_service", "quality", "logistics", "finance", "operations"]
        start = datetime.now(UTC) - timedelta(days=SEED_DAYS)
        rng = random.Random(7411)
        rows: list[dict[str, Any]] = []
        added = 0
        for index in range(have, total):
            case_id = f"R-B{index:07d}"
            created = start + timedelta(seconds=index * 300)
            view = {**template["view"], "id": case_id}
            row = {**template, "id": case_id, "view": view, "token": secrets.token_urlsafe(16)}
            row.update(
                order_id=f"SO-B{index}",
                customer_id=f"C-B{index % 20_000}",
                status=rng.choice(statuses),
                queue=rng.choice(queues),
                created_at=created,
                updated_at=created,
                next_deadline=created + timedelta(days=rng.randint(1, 30)),
            )
            row.update(_report_columns(rng, row, deadlines, refunds))
            rows.append(row)
            if len(rows) == 5000:
                conn.execute(insert(table), rows)
                conn.execute(insert(DEADLINE_OUTCOMES), deadlines)
                if refunds:
                    conn.execute(insert(REFUND_ITEMS), refunds)
                added += len(rows)
                rows, deadlines[:], refunds[:] = [], [], []
        if rows:
            conn.execute(insert(table), rows)
            conn.execute(insert(DEADLINE_OUTCOMES), deadlines)
            if refunds:
                conn.execute(insert(REFUND_ITEMS), refunds)
            added += len(rows)
    # A table that grew to 100k cases over months has been vacuumed and analysed by then; one
    # bulk insert ago it has not, and PostgreSQL's autovacuum would start on it in the middle
    # of the reads (a run with the list p99 at 805 ms on PostgreSQL had no such pass first).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE")
        # The reports read the case table's indexes alone (index-only scans), which needs its
        # pages marked all-visible; a first VACUUM right after the bulk insert at times left
        # the case table unmarked (relallvisible 0) while marking the others, and the summary
        # then read the 160 MB table. A table months old has been vacuumed many times.
        for _ in range(3 if conn.dialect.name == "postgresql" else 0):
            visible, pages = conn.exec_driver_sql(
                "SELECT relallvisible, relpages FROM pg_class WHERE relname = 'case'"
            ).one()
            if visible >= pages * 0.9:
                break
            conn.exec_driver_sql('VACUUM "case"')
    engine.dispose()
    return added


# A shop's spread of cases, for the report columns of the seeded rows.
SEED_TYPES = ["return"] * 12 + ["exchange"] * 3 + ["refund"] * 2 + ["repair"] * 2 + ["complaint"]
SEED_REASONS = ["defective", "damaged_in_transit", "wrong_item", "not_as_described",
                "changed_mind", "size_fit", "size_fit", "changed_mind", "other"]  # fmt: skip
SEED_METHODS = ["card"] * 6 + ["line_pay"] * 2 + ["atm", "cod"]
SEED_LATER_TIMERS = ["customer_shipment", "carrier_pickup", "transit", "inspection", "refund"]
ENDED = frozenset({"resolved", "closed"})


def _report_columns(
    rng: random.Random,
    row: dict[str, Any],
    deadlines: list[dict[str, Any]],
    refunds: list[dict[str, Any]],
) -> dict[str, Any]:
    """Report columns with a realistic spread for one seeded case, and its deadline outcomes
    and refunded SKUs (appended to `deadlines` and `refunds`)."""
    created: datetime = row["created_at"]
    type_ = rng.choice(SEED_TYPES)
    reason = None if type_ == "complaint" else rng.choice(SEED_REASONS)
    currency = "USD" if rng.random() < 0.05 else "TWD"
    items = rng.randint(2, 500) * 1000
    ended = row["status"] in ENDED
    refunded = ended and type_ in ("return", "refund") and rng.random() < 0.85
    # Minutes to days, most within hours: what agents and the policy's auto-approvals give.
    first = int(rng.lognormvariate(8.5, 1.6)) if row["status"] != "open" else None
    refund_cents = items if rng.random() < 0.8 else items // 2
    refund_seconds = int(rng.uniform(0.5, 12) * 86400) if refunded else None
    resolution = (refund_seconds or int(rng.uniform(1, 20) * 86400)) if ended else None
    outcome = None
    if refunded:
        outcome = "kept_item" if rng.random() < 0.1 else "refund"
    elif ended and type_ in ("exchange", "repair"):
        outcome = type_
    for index, timer in enumerate(("review", rng.choice(SEED_LATER_TIMERS))):
        due = created + timedelta(days=1 + 3 * index)
        if row["status"] == "open" or (index and row["status"] == "awaiting_review"):
            break
        met = rng.random() < (0.92 if index == 0 else 0.85)
        deadlines.append(
            {
                "case_id": row["id"],
                "timer": timer,
                "due_at": due,
                "outcome": "met" if met else "breached",
                "settled_at": due - timedelta(hours=3) if met else due,
                "type": type_,
                "queue": row["queue"],
                "created_at": created,
            }
        )
    if refunded:
        refunds.append(
            {
                "case_id": row["id"],
                "sku": f"SKU-{int(rng.paretovariate(1.2)) % 800:04d}",
                "cents": refund_cents,
                "currency": currency,
                "reason": reason,
                "type": type_,
                "queue": row["queue"],
                "created_at": created,
            }
        )
    return {
        "type": type_,
        "reason": reason,
        "currency": currency,
        "payment_method": rng.choice(SEED_METHODS),
        "items_cents": items,
        "refund_cents": refund_cents if refunded else None,
        "refund_status": "succeeded" if refunded else None,
        "outcome": outcome,
        "rating": rng.choice([1, 2, 3, 4, 4, 5, 5, 5]) if ended and rng.random() < 0.4 else None,
        "first_response_seconds": first,
        "first_response_at": created + timedelta(seconds=first) if first is not None else None,
        "refund_seconds": refund_seconds,
        "refunded_at": created + timedelta(seconds=refund_seconds) if refund_seconds else None,
        "resolution_seconds": resolution,
        "resolved_at": created + timedelta(seconds=resolution) if resolution else None,
    }


# The seeded cases' period: they open every 300 s from 400 days ago (`seed`), so a year and a
# day from then covers all 100k of them.
SEED_DAYS = 400


def _summary_paths() -> list[str]:
    start = (datetime.now(UTC) - timedelta(days=SEED_DAYS)).date()
    period = f"from={start.isoformat()}&to={(start + timedelta(days=365)).isoformat()}"
    return [
        f"/v1/reports/summary?{period}",
        f"/v1/reports/summary?{period}&type=return&queue=logistics",
    ]


@dataclass
class Reads:
    """Latencies of one kind of read."""

    label: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def reads(url: str, ids: list[str], *, samples: int) -> list[Reads]:
    """GET a case, and list pages by the filters agents use, `samples` times each; the
    reports' summary of the whole seeded year, and of one type in one queue, a twentieth as
    often (each reads every case of its period)."""
    rng = random.Random(42)
    get = Reads("`GET /v1/cases/{id}`")
    lists = Reads("`GET /v1/cases?status=…&limit=50` (and by queue, overdue, type)")
    whole, filtered = _summary_paths()
    summaries = [
        (Reads("`GET /v1/reports/summary` (a year: every seeded case)"), whole),
        (Reads("`GET /v1/reports/summary?type=return&queue=logistics` (a year)"), filtered),
    ]
    filters = ["status=awaiting_shipment", "queue=logistics", "overdue=true", "type=return",
               "status=inspecting&queue=quality"]  # fmt: skip
    headers = {"Authorization": f"Bearer {OPERATOR}"}
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as http:
        # Warm the connection and the server's imports; not counted.
        await http.get(f"/v1/cases/{ids[0]}")
        for index in range(samples):
            for kind, path in (
                (get, f"/v1/cases/{rng.choice(ids)}"),
                (lists, f"/v1/cases?{filters[index % len(filters)]}&limit=50"),
            ):
                started = time.perf_counter()
                answer = await http.get(path)
                elapsed = time.perf_counter() - started
                if answer.status_code == 200:
                    kind.latencies.append(elapsed)
                else:
                    kind.errors.append(str(answer.status_code))
            for kind, path in summaries if index % 20 == 0 else ():
                started = time.perf_counter()
                answer = await http.get(path)
                elapsed = time.perf_counter() - started
                if answer.status_code == 200:
                    kind.latencies.append(elapsed)
                else:
                    kind.errors.append(str(answer.status_code))
    return [get, lists, *(kind for kind, _ in summaries)]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---- the orchestration ----------------------------------------------------------------


@dataclass
class ApiBench:
    """Everything one run measured."""

    opens: list[Opens] = field(default_factory=list)
    bursts: list[Opens] = field(default_factory=list)
    reads: dict[str, list[Reads]] = field(default_factory=dict)
    seeded: dict[str, int] = field(default_factory=dict)
    load: list[tuple[float, float, float]] = field(default_factory=list)
    seconds: float = 0.0


async def opens_rounds(
    bench: ApiBench,
    client: Any,
    *,
    url: str,
    queue: str,
    rounds: int,
    opens_per_round: int,
    database: str,
    api_pid: int,
    worker_pid: int,
) -> None:
    """Alternating rounds of API opens and bare starts at 4 and at 50 in flight."""
    await api_opens(url, 20, 4)  # warm-up: imports, first connections
    await bare_opens(client, queue, 20, 4)
    groups = {
        "api": family(api_pid),
        "worker": family(worker_pid),
        "temporal": [p for p in family(os.getpid())[1:] if p not in
                     family(api_pid) + family(worker_pid)],
        "bench": [os.getpid()],
    }  # fmt: skip

    async def measured(opens: Awaitable[Opens]) -> Opens:
        before = {name: cpu_seconds(pids) for name, pids in groups.items()}
        result = await opens
        result.database = database
        result.cpu = {name: cpu_seconds(pids) - before[name] for name, pids in groups.items()}
        # The round's cases run on after it: wait for them, so the next round starts from an
        # idle worker instead of paying for this one's cases.
        await until_quiet(groups["worker"] + groups["temporal"])
        result.until_quiet = {
            name: cpu_seconds(pids) - before[name] for name, pids in groups.items()
        }
        return result

    await until_quiet(groups["worker"] + groups["temporal"])
    for in_flight in (4, 50):
        for index in range(rounds):
            sides = [
                lambda f=in_flight: measured(api_opens(url, opens_per_round, f)),
                lambda f=in_flight: measured(bare_opens(client, queue, opens_per_round, f)),
                lambda f=in_flight: measured(
                    bare_opens(client, queue, opens_per_round, f, as_api=True)
                ),
            ]
            for measure in sides if index % 2 == 0 else sides[::-1]:
                bench.opens.append(await measure())


async def run(
    opens_per_round: int, rounds: int, seeded: int, samples: int, *, with_reads: bool = True
) -> ApiBench:
    """Start the server and the service's processes, and measure opens and reads."""
    from temporalio.testing import WorkflowEnvironment

    from aftersales.binaries import find
    from aftersales.temporal import search_attribute_keys
    from config.temporal import data_converter
    from tests.api.postgres import PostgresServer, find_bin_dir

    bench = ApiBench()
    started = time.perf_counter()
    bench.load.append(os.getloadavg())
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find("temporal"),
        data_converter=data_converter,
        search_attributes=search_attribute_keys(),
    )
    address = env.client.service_client.config.target_host
    queue = "bench-api"
    try:
        with tempfile.TemporaryDirectory(prefix="aftersales-bench-api-") as tmp:
            data = Path(tmp)
            sqlite_url = f"sqlite:///{data / 'aftersales.db'}"
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            common = {"address": address, "data_dir": data, "queue": queue}
            api_env = _env(database_url=sqlite_url, port=port, **common)
            async with (
                process([_script(), "worker"], api_env, data / "worker.log") as worker_process,
                process([_script(), "api"], api_env, data / "api.log") as api_process,
            ):
                await _until_ready(url)
                await opens_rounds(
                    bench, env.client, url=url, queue=queue, rounds=rounds,
                    opens_per_round=opens_per_round, database="SQLite",
                    api_pid=api_process.pid, worker_pid=worker_process.pid,
                )  # fmt: skip
                for in_flight in (50, 200):
                    bench.bursts.append(await api_opens(url, max(2 * in_flight, 200), in_flight))
            if with_reads:
                # Reads: the worker is gone, so no workflow cache holds these cases.
                seed(sqlite_url, seeded)
                bench.seeded["SQLite"] = seeded
                bench.reads["SQLite"] = await _read_bench(sqlite_url, data, address, queue, samples)
            bin_dir = find_bin_dir()
            if bin_dir is not None:
                with PostgresServer(bin_dir) as pg:
                    port = _free_port()
                    pg_url = f"http://127.0.0.1:{port}"
                    # A queue of its own: the SQLite round's cases still wait on theirs.
                    pg_opens = {**common, "queue": f"{queue}-pg"}
                    pg_env = _env(database_url=pg.url, port=port, **pg_opens)
                    async with (
                        process([_script(), "worker"], pg_env, data / "worker-pg.log") as w,
                        process([_script(), "api"], pg_env, data / "api-pg-opens.log") as a,
                    ):
                        await _until_ready(pg_url)
                        await opens_rounds(
                            bench, env.client, url=pg_url, queue=f"{queue}-pg", rounds=rounds,
                            opens_per_round=opens_per_round, database="PostgreSQL",
                            api_pid=a.pid, worker_pid=w.pid,
                        )  # fmt: skip
                    if not with_reads:
                        return bench
                    port = _free_port()
                    pg_env = _env(database_url=pg.url, port=port, **common)
                    async with process([_script(), "api"], pg_env, data / "api-pg.log"):
                        await _until_ready(f"http://127.0.0.1:{port}")
                        # One real open writes the row every seeded case is cloned from.
                        first = await api_opens(f"http://127.0.0.1:{port}", 1, 1)
                        if first.errors:
                            raise RuntimeError(f"PostgreSQL open failed: {first.errors}")
                    seed(pg.url, seeded)
                    bench.seeded["PostgreSQL"] = seeded
                    bench.reads["PostgreSQL"] = await _read_bench(
                        pg.url, data, address, queue, samples
                    )
    finally:
        await env.shutdown()
        bench.load.append(os.getloadavg())
        bench.seconds = time.perf_counter() - started
    return bench


async def _read_bench(
    database_url: str, data: Path, address: str, queue: str, samples: int
) -> list[Reads]:
    from sqlalchemy import select

    from store.db import make_engine
    from store.tables import Case

    engine = make_engine(database_url)
    with engine.connect() as conn:
        ids = list(conn.execute(select(Case.id)).scalars())  # type: ignore[call-overload]
    engine.dispose()
    port = _free_port()
    env = _env(database_url=database_url, port=port, address=address, data_dir=data, queue=queue)
    name = "api-read-pg.log" if database_url.startswith("postgresql") else "api-read.log"
    async with process([_script(), "api"], env, data / name):
        await _until_ready(f"http://127.0.0.1:{port}")
        return await reads(f"http://127.0.0.1:{port}", ids, samples=samples)


# ---- the report -----------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def render(bench: ApiBench) -> str:
    """The API section of docs/benchmarks.md."""
    lines = [
        MARKER,
        "",
        "## API",
        "",
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {bench.seconds:.0f} s in all. "
        "Load average before and after: "
        + " / ".join(f"{a:.2f} {b:.2f} {c:.2f}" for a, b, c in bench.load)
        + ".",
        "",
        "One Temporal dev server; the service's worker and API run as their own processes "
        "(`aftersales worker`, `aftersales api`) on SQLite, then on PostgreSQL. Each round "
        "opens "
        f"{OPENS_PER_ROUND} returns either through `POST /v1/cases` or with a bare "
        "`client.start_workflow` of the same workflow and input; rounds alternate, and the "
        "worker runs the cases of both. A round starts once the worker and Temporal are quiet "
        "(under 10% of a core for half a second): no round pays for the cases of the one "
        "before.",
        "",
        "Before the new core (cc2ad2f, measured for issue 9 with `aftersales dev` on SQLite): "
        "0.10x bare at 4 in flight (p50 521 ms against 54 ms); at 20 in flight 18 of 300 opens "
        "answered 500 and the stack stopped answering; `GET /v1/cases/{id}` p99 822 ms and a "
        "list by status p99 587 ms at 1,300 cases with a cold worker cache.",
        "",
        "Before the API fixes of issue 9's bench round (f1a471a, this bench): opens 0.30x bare "
        "at 4 in flight (p50 151 ms, p99 7.4 s: the first INSERT of an open waited for "
        "SQLite's write lock in the busy handler's 100 ms polls) and 0.32x at 50; list p99 "
        "171 ms on SQLite and 203 ms on PostgreSQL (full GCs of the API's heap, 50-165 ms each; "
        "on PostgreSQL a queue+status list ANDed two index bitmaps and sorted).",
        "",
        "Before this round (a87f6c4, run of 2026-12-01 19:51 UTC): opens 0.46x bare at 4 in "
        "flight and 0.35x at 50 on SQLite, with the bench posting through httpx (about 10 ms of "
        "the bench process's CPU per open, on the same two cores as the servers) and the API "
        "on the ORM, asyncio and h11 (20 ms of API CPU per open). Since then: Core statements "
        "on the open path, uvloop and httptools, Core statements in the worker's projection "
        "and outbox (shorter holds of SQLite's write lock), a bench client of 0.5 ms per open, "
        "rounds that start once the worker is quiet, and PostgreSQL rows.",
        "",
        "Before this round (61c886e, run of 2026-12-02 00:31 UTC): opens 0.65x at 4 and 0.58x "
        "at 50 on SQLite, 0.65x and 0.63x on PostgreSQL; list p99 805 ms on PostgreSQL. Those "
        "runs measured the checkout the venv's editable install points at, which was this one; "
        "the bench now puts its own tree first on PYTHONPATH for the processes it starts. "
        "Since then: an open writes before it looks for a duplicate, SQLite's group writer "
        "keeps a connection of its own, an open's reads run on a Core connection, the open "
        "route answers with the case serialized once and reads its app state directly (API "
        "CPU per open 10.5-11.7 -> 9.7-10.7 ms at 4 in flight, 9.3-10.5 -> 8.1-9.0 at 50, "
        "on a busy machine), and the seeded table is vacuumed and analysed before the reads.",
        "",
        "A third side starts the same way with everything else the API's start sends "
        f"({AS_API}: the static summary and details, REJECT_DUPLICATE, `recorded=True`), to "
        "tell what the API costs from what its start asks of Temporal.",
        "",
        "| database | in flight | API opens/s | bare starts/s | ratio API / bare "
        "| bare as the API starts/s | ratio API / that "
        "| API p50 / p99 ms | bare p50 / p99 ms | API errors | API CPU ms per open |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for database, in_flight in _settings(bench):
        here = [o for o in bench.opens if (o.database, o.in_flight) == (database, in_flight)]
        api = [o for o in here if o.label == "API"]
        bare = [o for o in here if o.label == "bare start_workflow"]
        as_api = [o for o in here if o.label == AS_API]
        api_rate = statistics.median(o.per_second for o in api)
        bare_rate = statistics.median(o.per_second for o in bare)
        as_api_rate = statistics.median(o.per_second for o in as_api) if as_api else float("nan")
        api_lat = [x for o in api for x in o.latencies]
        bare_lat = [x for o in bare for x in o.latencies]
        lines.append(
            f"| {database} | {in_flight} | {api_rate:.1f} | {bare_rate:.1f} "
            f"| **{api_rate / bare_rate:.2f}** "
            f"| {as_api_rate:.1f} | {api_rate / as_api_rate:.2f} "
            f"| {_ms(_pct(api_lat, 0.5))} / {_ms(_pct(api_lat, 0.99))} "
            f"| {_ms(_pct(bare_lat, 0.5))} / {_ms(_pct(bare_lat, 0.99))} "
            f"| {sum(len(o.errors) for o in api)} | {_ms(_cpu_per_open(api, 'api'))} |"
        )
    lines += [
        "",
        "CPU ms per open of each process during the rounds (the bench process is the client), "
        "and of all of them until the worker and Temporal were quiet again (the cases run on "
        "after their round; the next round starts only then):",
        "",
        "| database | in flight | side | API | worker | Temporal | bench client | all "
        "| all until quiet |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for database, in_flight in _settings(bench):
        for label in ("API", "bare start_workflow", AS_API):
            side = [
                o
                for o in bench.opens
                if (o.database, o.in_flight, o.label) == (database, in_flight, label)
            ]
            per = {name: _cpu_per_open(side, name) for name in CPU_GROUPS}
            total = sum(_cpu_per_open(side, name, until_quiet=True) for name in CPU_GROUPS)
            lines.append(
                f"| {database} | {in_flight} | {label} | "
                + " | ".join(_ms(per[name]) for name in CPU_GROUPS)
                + f" | {_ms(sum(per.values()))} | {_ms(total)} |"
            )
    lines += ["", "Bursts through the API (errors are any answer but 201, or no answer):", ""]
    lines += [
        "| in flight | opens | errors | which | opens/s | p99 ms |",
        "|---:|---:|---:|---|---:|---:|",
    ]
    for burst in bench.bursts:
        total = len(burst.latencies) + len(burst.errors)
        which = ", ".join(f"{n} x {e}" for e, n in sorted(Counter(burst.errors).items())) or "—"
        lines.append(
            f"| {burst.in_flight} | {total} | **{len(burst.errors)}** | {which} "
            f"| {burst.per_second:.1f} | {_ms(_pct(burst.latencies, 0.99))} |"
        )
    lines += [
        "",
        "Reads with the case table seeded to "
        + ", ".join(f"{n:,} rows on {db}" for db, n in _totals(bench).items())
        + " (clones of a real opened case with spread types, statuses, queues, deadlines and"
        " report figures: first responses, refunds, outcomes, ratings, deadline outcomes), "
        "through a fresh API process, the worker stopped:",
        "",
        "| database | read | samples | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for database, kinds in bench.reads.items():
        for kind in kinds:
            lines.append(
                f"| {database} | {kind.label} | {len(kind.latencies)} "
                f"| {_ms(_pct(kind.latencies, 0.5))} | **{_ms(_pct(kind.latencies, 0.99))}** |"
            )
    lines.append("")
    return "\n".join(lines)


CPU_GROUPS = ("api", "worker", "temporal", "bench")


def _settings(bench: ApiBench) -> list[tuple[str, int]]:
    """Each (database, in flight) the opens ran at, in the order they ran."""
    return list(dict.fromkeys((o.database, o.in_flight) for o in bench.opens))


def _cpu_per_open(rounds: list[Opens], group: str, *, until_quiet: bool = False) -> float:
    answered = sum(len(o.latencies) for o in rounds)
    used = sum((o.until_quiet if until_quiet else o.cpu).get(group, 0.0) for o in rounds)
    return used / answered if answered else float("nan")


def _totals(bench: ApiBench) -> dict[str, int]:
    return dict(bench.seeded)


def write(out: Path, section: str) -> None:
    """Replace the API section of the benchmarks page (from its marker to the Scale section's,
    which `python -m bench.scale` writes)."""
    text = out.read_text(encoding="utf-8") if out.exists() else "# Benchmarks\n"
    head = text.split(MARKER, 1)[0].rstrip("\n")
    scale = text[text.index(SCALE_MARKER) :] if SCALE_MARKER in text else ""
    tail = f"\n{scale}" if scale else ""
    out.write_text(f"{head}\n\n{section.rstrip(chr(10))}\n{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Run the API benchmark and write its section of docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=OPENS_PER_ROUND)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seeded", type=int, default=SEEDED)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument(
        "--no-reads", action="store_true", help="measure opens only (quicker, while iterating)"
    )
    parser.add_argument("--out", type=Path, default=_root() / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    bench = asyncio.run(
        run(args.opens, args.rounds, args.seeded, args.samples, with_reads=not args.no_reads)
    )
    section = render(bench)
    print(section, flush=True)
    write(args.out, section)
    print(f"bench: wrote the API section of {args.out}", flush=True)


if __name__ == "__main__":
    main()
