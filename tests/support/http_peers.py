"""A real local HTTP server playing every outbound peer: payment, carrier, webhook, SMS, and
the storefront's store-credit API (`POST /store-credits`).

Tests point the connectors at it (payment and carrier at `peers.url`, webhook at
`peers.url + "/webhook"`, SMS at `peers.url + "/sms"`) and then inspect what arrived.
It verifies `X-Aftersales-Signature` on every POST, behaves idempotently per
`Idempotency-Key` like a real payment provider, and can be told to fail or stall.
"""

from __future__ import annotations

import copy
import json
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from activities.signing import HEADER as SIGNATURE_HEADER
from activities.signing import verify

DEFAULT_SECRET = "dev-webhook-secret"
STORE_CREDITS = "/store-credits"
PATHS = (
    "/refunds",
    "/pickups",
    "/shipments",
    "/interceptions",
    "/dropoffs",
    "/webhook",
    "/sms",
    STORE_CREDITS,
)
_KEYED = frozenset(
    {"/refunds", "/pickups", "/shipments", "/interceptions", "/dropoffs", STORE_CREDITS}
)
_CARRIER_PREFIX = {"/pickups": "pu", "/shipments": "sh", "/interceptions": "ic", "/dropoffs": "do"}
# The chains this carrier's store-to-store network serves; the first when a call names none.
DROPOFF_CHAINS = ("7-ELEVEN", "FamilyMart", "Hi-Life", "OK mart")
# How long a drop-off code works unless a test sets a case's expiry (`expire_dropoff`).
DROPOFF_DAYS = 7
# Just enough bytes for a client to see a PDF; nothing here renders labels.
_LABEL_PDF = b"%PDF-1.4\n% aftersales test label\n%%EOF\n"

Json = dict[str, Any]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it, with the status it answered."""

    method: str
    path: str
    idempotency_key: str | None
    status: int
    payload: Any


@dataclass
class _Failure:
    status: int
    times: int
    body: Json
    # Only calls whose JSON body names this case: on a stack shared by many tests, another
    # test's case (a webhook still on its way) must not take a failure meant for this one.
    case_id: str | None = None


@dataclass
class _Stall:
    seconds: float
    times: int


def _normalize(path: str) -> str:
    return "/" + path.split("?", 1)[0].strip("/")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    peers: Peers

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out on a stalled request has hung up; that is the point of
        # the stall, not an error worth a traceback on stderr.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0 closes each connection, so a stopped server never leaves httpx a stale pool.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        path = _normalize(self.path)
        # Labels are fetched by browsers, unsigned, like a real carrier's label links.
        if path.startswith("/labels/") and path.endswith(".pdf"):
            self._send(200, _LABEL_PDF, "application/pdf")
        else:
            self._send_json(404, {"detail": f"no GET {path}"})

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send_json(411, {"detail": "Content-Length required"})
            return
        body = self.rfile.read(int(length))
        status, answer = self.server.peers._handle(
            path=_normalize(self.path),
            body=body,
            signature=self.headers.get(SIGNATURE_HEADER),
            idempotency_key=self.headers.get("Idempotency-Key"),
        )
        self._send_json(status, answer)

    def _send_json(self, status: int, answer: Json) -> None:
        content_type = "application/json" if status < 400 else "application/problem+json"
        self._send(status, json.dumps(answer).encode(), content_type)

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Peers:
    """Payment provider, carrier, storefront webhook receiver and SMS gateway on one port."""

    def __init__(
        self,
        secret: str = DEFAULT_SECRET,
        *,
        tolerance: int = 300,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.secret = secret
        self.tolerance = tolerance
        self.host = host
        # 0: a free port at the first start; a restart after `stop` binds the same one again
        # (a partner back from an outage answers where it did).
        self.port = port
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        self._refund_status = "succeeded"
        self._failures: dict[str, deque[_Failure]] = {}
        self._stalls: dict[str, deque[_Stall]] = {}
        self._init_state()

    def _init_state(self) -> None:
        self._requests: list[RecordedRequest] = []
        self._rejections: list[RecordedRequest] = []
        self._refunds: dict[str, Json] = {}
        self._refund_answers: dict[str, Json] = {}
        self._refund_calls = 0
        self._carrier: dict[str, dict[str, Json]] = {p: {} for p in _CARRIER_PREFIX}
        self._carrier_answers: dict[str, dict[str, Json]] = {p: {} for p in _CARRIER_PREFIX}
        self._webhooks: list[tuple[str | None, Json]] = []
        self._sms: list[tuple[str | None, Json]] = []
        self._dropoff_expiry: dict[str, datetime] = {}
        self._credits: dict[str, Json] = {}
        self._credit_answers: dict[str, Json] = {}
        # Signed calls per path as they arrive, before any stall: a test sees a call in flight.
        self._arrivals: dict[str, int] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Peers:
        """Bind the port (a free one at first) on the host and serve in a background thread."""
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.peers = self
        self.port = server.server_address[1]
        self._url = f"http://{self.host}:{server.server_address[1]}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"http-peers-{server.server_address[1]}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Peers:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("Peers was never started")
        return self._url

    @property
    def webhook_url(self) -> str:
        """Where the storefront webhook connector should post."""
        return self.url + "/webhook"

    @property
    def sms_url(self) -> str:
        """Where the SMS connector should post."""
        return self.url + "/sms"

    def reset(self) -> None:
        """Forget everything recorded and every pending failure or stall."""
        with self._lock:
            self._init_state()
            self._failures.clear()
            self._stalls.clear()
            self._refund_status = "succeeded"

    # -- behaviour knobs -------------------------------------------------------------------

    @property
    def refund_status(self) -> str:
        """Status new refunds get: "succeeded" (default) or e.g. "pending"."""
        with self._lock:
            return self._refund_status

    @refund_status.setter
    def refund_status(self, value: str) -> None:
        with self._lock:
            self._refund_status = value

    def fail_next(
        self,
        path: str,
        status: int,
        times: int = 1,
        *,
        detail: str | None = None,
        case_id: str | None = None,
    ) -> None:
        """Answer the next `times` signed calls to `path` (about `case_id`, if given) with
        `status`, doing nothing else."""
        body = {
            "title": "injected failure",
            "status": status,
            "detail": detail or f"injected {status} for {_normalize(path)}",
        }
        with self._lock:
            self._failures.setdefault(_normalize(path), deque()).append(
                _Failure(status, times, body, case_id)
            )

    def expire_dropoff(self, case_id: str, at: datetime) -> None:
        """Give the case's drop-off codes this expiry (the test server's clock is not the
        wall clock this server reads)."""
        with self._lock:
            self._dropoff_expiry[case_id] = at

    def stall_next(self, path: str, seconds: float, times: int = 1) -> None:
        """Delay the next `times` calls to `path`, then process them normally.

        Models the nasty case: the peer did the work but the client timed out waiting.
        """
        with self._lock:
            self._stalls.setdefault(_normalize(path), deque()).append(_Stall(seconds, times))

    # -- recorded state (snapshots, safe to keep) ------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every POST, in arrival order, including rejected and failed ones."""
        with self._lock:
            return list(self._requests)

    @property
    def rejections(self) -> list[RecordedRequest]:
        """POSTs refused with 401 for a missing, bad or stale signature."""
        with self._lock:
            return list(self._rejections)

    @property
    def refunds(self) -> dict[str, Json]:
        """Distinct refunds: idempotency key -> payload."""
        with self._lock:
            return copy.deepcopy(self._refunds)

    @property
    def refund_calls(self) -> int:
        """Signed POST /refunds attempts, replays and injected failures included."""
        with self._lock:
            return self._refund_calls

    @property
    def pickups(self) -> dict[str, Json]:
        """Distinct pickups: idempotency key -> payload."""
        return self._carrier_snapshot("/pickups")

    @property
    def shipments(self) -> dict[str, Json]:
        """Distinct shipments: idempotency key -> payload."""
        return self._carrier_snapshot("/shipments")

    @property
    def interceptions(self) -> dict[str, Json]:
        """Distinct interceptions: idempotency key -> payload."""
        return self._carrier_snapshot("/interceptions")

    @property
    def webhooks(self) -> list[Json]:
        """Every webhook delivery accepted, redeliveries included."""
        with self._lock:
            return [copy.deepcopy(event) for _, event in self._webhooks]

    @property
    def sms(self) -> list[Json]:
        """Every SMS accepted, redeliveries included."""
        with self._lock:
            return [copy.deepcopy(message) for _, message in self._sms]

    def store_credits_for(self, case_id: str) -> list[Json]:
        """Distinct store credits of a case: payload plus the `credit_id` and `code` answered."""
        with self._lock:
            return [
                {**copy.deepcopy(payload), **self._credit_answers[key], "idempotency_key": key}
                for key, payload in self._credits.items()
                if payload.get("case_id") == case_id
            ]

    def arrivals(self, path: str) -> int:
        """Signed calls to `path` that have arrived so far (stalled ones included)."""
        with self._lock:
            return self._arrivals.get(_normalize(path), 0)

    def refunds_for(self, case_id: str) -> list[Json]:
        """Distinct refunds of a case: payload plus the `refund_id` and `refund_status` answered."""
        with self._lock:
            return [
                {
                    **copy.deepcopy(payload),
                    "refund_id": self._refund_answers[key]["refund_id"],
                    "refund_status": self._refund_answers[key]["status"],
                }
                for key, payload in self._refunds.items()
                if payload.get("case_id") == case_id
            ]

    @property
    def dropoffs(self) -> dict[str, Json]:
        """Distinct drop-offs: idempotency key -> payload."""
        return self._carrier_snapshot("/dropoffs")

    def dropoffs_for(self, case_id: str) -> list[Json]:
        """Distinct drop-off payloads of a case."""
        return [p for p in self.dropoffs.values() if p.get("case_id") == case_id]

    def pickups_for(self, case_id: str) -> list[Json]:
        """Distinct pickup payloads of a case."""
        return [p for p in self.pickups.values() if p.get("case_id") == case_id]

    def shipments_for(self, case_id: str) -> list[Json]:
        """Distinct shipment payloads of a case."""
        return [p for p in self.shipments.values() if p.get("case_id") == case_id]

    def interceptions_for(self, case_id: str) -> list[Json]:
        """Distinct interception payloads of a case."""
        return [p for p in self.interceptions.values() if p.get("case_id") == case_id]

    def webhook_events(self, case_id: str) -> list[Json]:
        """Distinct webhook events of a case (a redelivery of the same event counts once)."""
        with self._lock:
            return _distinct(self._webhooks, case_id)

    def sms_for(self, case_id: str) -> list[Json]:
        """Distinct SMS messages of a case."""
        with self._lock:
            return _distinct(self._sms, case_id)

    def wait_for(
        self, predicate: Callable[[Peers], bool], *, timeout: float = 10.0, interval: float = 0.05
    ) -> None:
        """Block until `predicate(self)` holds; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"peers condition not met within {timeout}s")
            time.sleep(interval)

    def _carrier_snapshot(self, path: str) -> dict[str, Json]:
        with self._lock:
            return copy.deepcopy(self._carrier[path])

    # -- request handling (server threads) -------------------------------------------------

    def _handle(
        self, *, path: str, body: bytes, signature: str | None, idempotency_key: str | None
    ) -> tuple[int, Json]:
        payload: Any = None
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body.decode("utf-8", "replace")

        def record(status: int) -> None:
            self._requests.append(RecordedRequest("POST", path, idempotency_key, status, payload))

        if not verify(self.secret, body, signature, now=int(time.time()), tolerance=self.tolerance):
            with self._lock:
                record(401)
                self._rejections.append(self._requests[-1])
            return 401, {
                "title": "bad signature",
                "status": 401,
                "detail": f"missing, invalid or stale {SIGNATURE_HEADER}",
            }

        with self._lock:
            self._arrivals[path] = self._arrivals.get(path, 0) + 1
            if path == "/refunds":
                self._refund_calls += 1
            failure = self._take(self._failures, path, payload)
            if failure is not None:
                record(failure.status)
                return failure.status, dict(failure.body)
            stall = self._take(self._stalls, path)
        if stall is not None:
            time.sleep(stall.seconds)  # outside the lock, so other requests proceed

        with self._lock:
            status, answer = self._route(path, payload, idempotency_key)
            record(status)
            return status, answer

    @staticmethod
    def _take(queue: dict[str, deque[Any]], path: str, payload: Any = None) -> Any:
        pending = queue.get(path)
        if not pending:
            return None
        head = pending[0]
        wanted = getattr(head, "case_id", None)
        if wanted is not None and not (
            isinstance(payload, dict) and payload.get("case_id") == wanted
        ):
            return None
        head.times -= 1
        if head.times <= 0:
            pending.popleft()
        return head

    def _route(self, path: str, payload: Any, key: str | None) -> tuple[int, Json]:
        if path not in PATHS:
            return 404, {"title": "not found", "status": 404, "detail": f"no POST {path}"}
        if not isinstance(payload, dict):
            return 400, {
                "title": "bad request",
                "status": 400,
                "detail": "body must be a JSON object",
            }
        if path in _KEYED and not key:
            return 400, {
                "title": "bad request",
                "status": 400,
                "detail": "Idempotency-Key header required",
            }
        if path == "/webhook":
            self._webhooks.append((key, payload))
            return 200, {}
        if path == "/sms":
            self._sms.append((key, payload))
            return 200, {"message_id": f"sms_{secrets.token_hex(6)}"}
        assert key is not None
        if path == "/refunds":
            return self._refund(key, payload)
        if path == STORE_CREDITS:
            return self._store_credit(key, payload)
        return self._carrier_call(path, key, payload)

    def _refund(self, key: str, payload: Json) -> tuple[int, Json]:
        if key in self._refunds:
            if self._refunds[key] != payload:
                return _key_reused(key)
            return 200, dict(self._refund_answers[key])
        answer = {"refund_id": f"re_{secrets.token_hex(6)}", "status": self._refund_status}
        self._refunds[key] = payload
        self._refund_answers[key] = answer
        return 200, dict(answer)

    def _store_credit(self, key: str, payload: Json) -> tuple[int, Json]:
        # As a storefront would: one key is one credit; a repeat answers the same credit.
        if key in self._credits:
            if self._credits[key] != payload:
                return _key_reused(key)
            return 200, dict(self._credit_answers[key])
        missing = [
            name
            for name in ("case_id", "customer_id", "amount", "currency", "bonus", "reason")
            if name not in payload
        ]
        if missing:
            return 400, {"title": "bad request", "status": 400, "detail": f"missing {missing}"}
        answer = {
            "credit_id": f"sc_{secrets.token_hex(6)}",
            "code": f"SC-{secrets.token_hex(4).upper()}",
        }
        self._credits[key] = payload
        self._credit_answers[key] = answer
        return 200, dict(answer)

    def _carrier_call(self, path: str, key: str, payload: Json) -> tuple[int, Json]:
        seen, answers = self._carrier[path], self._carrier_answers[path]
        if key in seen:
            if seen[key] != payload:
                return _key_reused(key)
            return 200, dict(answers[key])
        object_id = f"{_CARRIER_PREFIX[path]}_{secrets.token_hex(6)}"
        answer: Json
        if path == "/dropoffs":
            chain = payload.get("chain") or DROPOFF_CHAINS[0]
            if chain not in DROPOFF_CHAINS:
                return 422, {
                    "title": "chain not served",
                    "status": 422,
                    "detail": f"no drop-off at {chain} stores",
                }
            expires = self._dropoff_expiry.get(str(payload.get("case_id"))) or (
                datetime.now(UTC) + timedelta(days=DROPOFF_DAYS)
            )
            answer = {
                "id": object_id,
                "tracking_number": f"TRK{secrets.token_hex(5).upper()}",
                "label_url": f"{self.url}/labels/{object_id}.pdf",
                # Store codes are digits, typed at a kiosk or scanned at the counter.
                "code": f"{secrets.randbelow(10**12):012d}",
                "chain": chain,
                "expires_at": expires.isoformat(),
            }
        elif path == "/interceptions":
            answer = {
                "id": object_id,
                "tracking_number": payload.get("tracking_number"),
                "label_url": None,
                "status": "requested",
            }
        else:
            # Random, so tracking numbers never collide across tests sharing one Temporal server.
            answer = {
                "id": object_id,
                "tracking_number": f"TRK{secrets.token_hex(5).upper()}",
                "label_url": f"{self.url}/labels/{object_id}.pdf",
            }
        seen[key] = payload
        answers[key] = answer
        return 200, dict(answer)


def _key_reused(key: str) -> tuple[int, Json]:
    # What real providers do: one key names one request; a different body is a client bug.
    return 422, {
        "title": "idempotency key reused",
        "status": 422,
        "detail": f"Idempotency-Key {key!r} was already used with a different body",
    }


def _distinct(deliveries: list[tuple[str | None, Json]], case_id: str) -> list[Json]:
    seen: set[str] = set()
    out: list[Json] = []
    for key, item in deliveries:
        if item.get("case_id") != case_id:
            continue
        identity = key or str(item.get("id") or json.dumps(item, sort_keys=True))
        if identity in seen:
            continue
        seen.add(identity)
        out.append(copy.deepcopy(item))
    return out
