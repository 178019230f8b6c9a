"""Outbound JSON connectors (DESIGN 7): payment provider, carrier, storefront webhook, SMS,
and the storefront's store-credit API.

One `post` is one attempt. Retrying is the Temporal activity retry policy's job, which is
why failures are split into `ConnectorRetryable` (5xx, timeouts, network),
`ConnectorRejected` (4xx, final: the case escalates to an agent) and `ConnectorMisconfigured`
(a URL that can never work: fix the setting it names).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import socket
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from activities.errors import short
from activities.metrics import CONNECTOR_CALLS, CallResult
from activities.signing import HEADER as SIGNATURE_HEADER
from activities.signing import sign
from config.settings import Settings
from config.tracing import instrument_http

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "aftersales-connector/0.1"
_SCHEMES = frozenset({"http", "https"})
# Throttling and request timeouts are 4xx but say "try again later", not "this is wrong".
_RETRYABLE_4XX = frozenset({408, 425, 429})
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class ConnectorError(Exception):
    """A connector call failed; the base class is not retryable (e.g. a misconfigured URL)."""

    def __init__(self, message: str, *, connector: str = "", path: str = "") -> None:
        super().__init__(message)
        self.connector = connector
        self.path = path


class ConnectorMisconfigured(ConnectorError):
    """The connector's URL can't work (bad scheme, no host, a host no DNS knows)."""


class ConnectorRetryable(ConnectorError):
    """The peer may succeed later: 5xx, timeout or connection trouble."""


class ConnectorRejected(ConnectorError):
    """The peer refused the request (4xx); retrying the same request will not help."""

    def __init__(self, status: int, detail: str, *, connector: str = "", path: str = "") -> None:
        super().__init__(
            f"{connector or 'connector'} {path or '/'} rejected with {status}: {detail}",
            connector=connector,
            path=path,
        )
        self.status = status
        self.detail = detail


def _json_default(value: Any) -> Any:
    # Times go out as ISO 8601 (str() would put a space where the T belongs); money as
    # decimal strings ("990.00"), as the API does; anything else falls back to str().
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def encode_payload(payload: dict[str, Any]) -> bytes:
    """Serialize a payload exactly as it is signed and sent: compact, sorted, UTF-8 JSON."""
    return json.dumps(
        payload,
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
        default=_json_default,
    ).encode("utf-8")


def _short_hash(*parts: str) -> bytes:
    return hashlib.sha256("\n".join(parts).encode()).digest()


def _tracking_number(digest: bytes) -> str:
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(10):
        number, rest = divmod(number, 36)
        chars.append(_BASE36[rest])
    return "SBX" + "".join(chars)


_SANDBOX_CARRIER_PREFIX = {
    "/pickups": "pu",
    "/shipments": "sh",
    "/interceptions": "ic",
    "/dropoffs": "do",
}
# How long a sandbox drop-off code works: a week, as store-to-store return codes commonly do.
SANDBOX_DROPOFF_DAYS = 7
SANDBOX_DROPOFF_CHAIN = "7-ELEVEN"


def sandbox_answer(path: str, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """The built-in sandbox answer, derived only from path and key (plus an echoed tracking no.
    and chain; a drop-off's expiry counts from the clock, as a real carrier's does)."""
    route = "/" + path.strip("/") if path.strip("/") else ""
    if route == "/refunds":
        return {
            "refund_id": f"sandbox_re_{_short_hash(idempotency_key).hex()[:16]}",
            "status": "succeeded",
        }
    if route == "/store-credits":
        digest = _short_hash(route, idempotency_key)
        return {
            "credit_id": f"sandbox_sc_{digest.hex()[:16]}",
            "code": "SC-" + _tracking_number(digest)[3:],
        }
    prefix = _SANDBOX_CARRIER_PREFIX.get(route)
    if prefix is None:
        return {}  # webhook, SMS: a bare 2xx
    digest = _short_hash(route, idempotency_key)
    object_id = f"sandbox_{prefix}_{digest.hex()[:16]}"
    if route == "/interceptions":
        answer: dict[str, Any] = {"id": object_id, "status": "requested"}
        if "tracking_number" in payload:
            answer["tracking_number"] = payload["tracking_number"]
        return answer
    answer = {"id": object_id, "tracking_number": _tracking_number(digest), "label_url": None}
    if route == "/dropoffs":
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=SANDBOX_DROPOFF_DAYS)
        answer |= {
            # Twelve digits, as store kiosks and counters take them.
            "code": f"{int.from_bytes(digest[-8:], 'big') % 10**12:012d}",
            "chain": payload.get("chain") or SANDBOX_DROPOFF_CHAIN,
            "expires_at": expires.replace(microsecond=0).isoformat(),
        }
    return answer


class _LazyClient:
    """An httpx client created on first use, so it binds to the event loop that uses it."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._client = client
        self._owned = client is None
        # Tracing on: every call to a partner gets its span (config.tracing); off, none.
        self._tracer_provider = tracer_provider

    def get(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            if not self._owned:
                raise ConnectorError("the httpx client handed to this connector is closed")
            self._client = httpx.AsyncClient(headers={"User-Agent": USER_AGENT})
            instrument_http(self._client, self._tracer_provider)
        return self._client

    async def aclose(self) -> None:
        # A client passed in belongs to the caller, who closes it.
        if self._owned and self._client is not None:
            await self._client.aclose()
            self._client = None


class Connector:
    """One outbound peer; with `base_url=None` it is the network-free sandbox."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str | None,
        secret: str,
        timeout: float,
        client: httpx.AsyncClient | None = None,
        setting: str | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url or None
        # The environment variable an operator fixes when the URL is wrong.
        self.setting = setting or f"AFTERSALES_{name.upper()}_URL"
        self._secret = secret
        self.timeout = timeout
        self._http = _LazyClient(client)

    def __repr__(self) -> str:
        return f"Connector(name={self.name!r}, base_url={self.base_url!r})"

    @property
    def sandbox(self) -> bool:
        """True when no URL is configured and answers come from the built-in sandbox."""
        return self.base_url is None

    def url_for(self, path: str) -> str:
        """The URL `path` is posted to; "" means the base URL itself (the webhook case)."""
        if self.base_url is None:
            raise ConnectorError("a sandbox connector has no URL", connector=self.name, path=path)
        if not path:
            return self.base_url
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def check_url(self, url: str, path: str = "") -> None:
        """Raise ConnectorMisconfigured when `url` can never be posted to."""
        problem = url_problem(url)
        if problem is not None:
            raise ConnectorMisconfigured(
                f"{self.setting}={url!r} is unusable: {problem}", connector=self.name, path=path
            )

    async def post(
        self, path: str, payload: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """POST `payload` as signed JSON once; return the JSON object answered ({} if none).

        Each call is counted and timed by partner and result (activities.metrics).
        """
        started = time.perf_counter()
        result = CallResult.OK if self.base_url else CallResult.SANDBOX
        try:
            return await self._post(path, payload, idempotency_key=idempotency_key)
        except ConnectorMisconfigured:
            result = CallResult.MISCONFIGURED
            raise
        except ConnectorRejected:
            result = CallResult.REJECTED
            raise
        except ConnectorRetryable:
            result = CallResult.RETRYABLE
            raise
        except BaseException:
            result = CallResult.ERROR
            raise
        finally:
            CONNECTOR_CALLS.labels(self.name, result.value).observe(time.perf_counter() - started)

    async def _post(
        self, path: str, payload: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        if not idempotency_key:
            raise ValueError("an Idempotency-Key is required on every connector call")
        # Encoded even in the sandbox so an unserializable payload fails the same way everywhere.
        body = encode_payload(payload)
        if self.base_url is None:
            return sandbox_answer(path, payload, idempotency_key)

        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            IDEMPOTENCY_HEADER: idempotency_key,
            # Signed at send time, so a retry hours later still carries a fresh timestamp.
            SIGNATURE_HEADER: sign(self._secret, body, timestamp=int(time.time())),
        }
        url = self.url_for(path)
        self.check_url(url, path)
        try:
            response = await self._http.get().post(
                url, content=body, headers=headers, timeout=self.timeout
            )
        except httpx.TimeoutException as exc:
            raise ConnectorRetryable(
                f"{self.name} {url} timed out after {self.timeout}s", connector=self.name, path=path
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ConnectorMisconfigured(
                f"{self.setting}={url!r} is unusable: {exc}", connector=self.name, path=path
            ) from exc
        except httpx.TransportError as exc:
            if _unknown_host(exc):
                # "Name or service not known" is an answer, not an outage (that is EAI_AGAIN).
                raise ConnectorMisconfigured(
                    f"{self.setting}={url!r}: no such host", connector=self.name, path=path
                ) from exc
            # A refused or reset connection may be the partner restarting: worth a retry.
            raise ConnectorRetryable(
                f"{self.name} {url} unreachable: {exc.__class__.__name__} {exc}",
                connector=self.name,
                path=path,
            ) from exc
        return self._answer(response, path)

    def _answer(self, response: httpx.Response, path: str) -> dict[str, Any]:
        status = response.status_code
        if 200 <= status < 300:
            return _json_object(response)
        if status >= 500 or status in _RETRYABLE_4XX:
            raise ConnectorRetryable(
                f"{self.name} {path or '/'} answered {status}: {_detail(response)}",
                connector=self.name,
                path=path,
            )
        # 4xx, and redirects (never followed: a moved endpoint is a configuration problem
        # that retrying cannot fix).
        raise ConnectorRejected(status, _detail(response), connector=self.name, path=path)

    async def aclose(self) -> None:
        """Close the HTTP client if this connector created it."""
        await self._http.aclose()


def url_problem(url: str) -> str | None:
    """Why `url` can never be posted to, or None when it looks usable."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return str(exc)
    if parsed.scheme not in _SCHEMES:
        return f"the scheme must be http or https, not {parsed.scheme or 'none'!r}"
    if not parsed.host:
        return "it has no host"
    if parsed.port == 0:
        return "port 0 is not a port anything listens on"
    return None


def _unknown_host(exc: BaseException) -> bool:
    # httpx wraps httpcore's error, which wraps the resolver's socket.gaierror.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return seen.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None))
        seen = seen.__cause__ or seen.__context__
    return False


def _json_object(response: httpx.Response) -> dict[str, Any]:
    # A 2xx is the acknowledgement (webhook and SMS promise nothing more), so a body that is
    # not a JSON object yields {}; callers that need fields check for them.
    if not response.content.strip():
        return {}
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _detail(response: httpx.Response) -> str:
    # Problem+json bodies (RFC 9457) carry the human-readable reason in "detail" or "title".
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("detail", "title", "error", "message"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return short(value)
    # Enough of the body to tell an agent what went wrong, not a whole HTML error page.
    text = response.text.strip()
    return short(text) if text else response.reason_phrase


@dataclass
class Connectors:
    """The outbound peers, sharing one lazily created HTTP client."""

    payment: Connector
    carrier: Connector
    webhook: Connector
    sms: Connector
    # The storefront's API (store credit, coupons); the sandbox when a caller builds none.
    storefront: Connector = field(
        default_factory=lambda: Connector(name="storefront", base_url=None, secret="", timeout=10)
    )
    _http: _LazyClient = field(default_factory=_LazyClient, repr=False)

    async def aclose(self) -> None:
        """Close the shared HTTP client."""
        await self._http.aclose()

    async def __aenter__(self) -> Connectors:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def connectors_from_settings(
    settings: Settings, *, tracer_provider: TracerProvider | None = None
) -> Connectors:
    """Build the connectors from settings; an unset URL means that peer is the sandbox.
    With a `tracer_provider` (tracing on) each outbound call is a span."""
    shared = _LazyClient(tracer_provider=tracer_provider)

    def make(name: str, base_url: str | None) -> Connector:
        connector = Connector(
            name=name,
            base_url=base_url,
            # DESIGN 7: every outbound call is signed with the webhook secret; the carrier
            # secret only verifies the carrier's inbound webhooks.
            secret=settings.webhook_secret,
            timeout=settings.connector_timeout_seconds,
            setting=f"AFTERSALES_{name.upper()}_URL",
        )
        connector._http = shared
        return connector

    return Connectors(
        payment=make("payment", settings.payment_url),
        carrier=make("carrier", settings.carrier_url),
        webhook=make("webhook", settings.webhook_url),
        sms=make("sms", settings.sms_url),
        storefront=make("storefront", settings.storefront_url),
        _http=shared,
    )
