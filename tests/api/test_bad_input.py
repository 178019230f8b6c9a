"""Bad input is never a 5xx: always a 4xx problem+json naming the field at fault."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.conftest import Api, assert_problem, token_of
from tests.support.factory import request_body


class _Drop:
    """Marks a field the test removes from the body (named, so test IDs are stable)."""

    def __repr__(self) -> str:
        return "DROP"


DROP = _Drop()


def _edit(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of the body with the dotted path set to `value` (or removed with DROP)."""
    body = copy.deepcopy(body)
    *parents, last = dotted.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DROP:
        del node[key]
    else:
        node[key] = value
    return body


ITEM = {"sku": "TEE-M-BLK", "quantity": 1, "unit_price": "990.00"}

# (dotted path, bad value, the field the problem must name)
CASE_BODY_ERRORS: list[tuple[str, Any, str]] = [
    ("type", "teleport", "type"),
    ("type", 7, "type"),
    ("reason", "bored", "reason"),
    ("reason", None, "reason"),
    # Any language tag resolves (an unknown one to en, domain/locales.py); a value that is no
    # tag at all is refused.
    ("customer.locale", "", "customer.locale"),
    ("customer.locale", "english please", "customer.locale"),
    ("customer.locale", "zh-" + "x" * 40, "customer.locale"),
    ("customer.locale", "zh\u0000TW", "customer.locale"),
    ("customer.locale", 7, "customer.locale"),
    ("customer.channel", "pigeon", "customer.channel"),
    ("customer.email", "not-an-address", "customer.email"),
    ("order.currency", "twd", "order.currency"),
    ("order.placed_at", "last tuesday", "order.placed_at"),
    ("items.0.unit_price", "-1.00", "items.0.unit_price"),
    ("items.0.unit_price", -1, "items.0.unit_price"),
    ("items.0.unit_price", "1000000000000", "items.0.unit_price"),
    ("items.0.unit_price", 1e12, "items.0.unit_price"),
    ("items.0.unit_price", "1e12", "items.0.unit_price"),
    ("items.0.unit_price", "9.999", "items.0.unit_price"),
    ("items.0.unit_price", "NaN", "items.0.unit_price"),
    ("items.0.unit_price", "Infinity", "items.0.unit_price"),
    ("items.0.unit_price", "-Infinity", "items.0.unit_price"),
    ("items.0.unit_price", "sNaN", "items.0.unit_price"),
    ("items.0.unit_price", "ninety", "items.0.unit_price"),
    ("items.0.quantity", 0, "items.0.quantity"),
    ("items.0.quantity", "lots", "items.0.quantity"),
    ("items.0.quantity", 10**30, "items.0.quantity"),
    ("items.0.warranty_months", -1, "items.0.warranty_months"),
    ("items.0.opened", "perhaps", "items.0.opened"),
    ("items.0.sku", "", "items.0.sku"),
    ("items.0.sku", "S" * 300, "items.0.sku"),
    ("description", "x" * 5000, "description"),
    ("order.id", "O" * 300, "order.id"),
    ("customer.id", "C" * 300, "customer.id"),
    ("evidence", ["https://x.example/p.jpg"] * 21, "evidence"),
    ("evidence", ["https://x.example/" + "p" * 3000], "evidence.0"),
    ("items", [ITEM] * 101, "items"),
    ("items", [], "items"),
    ("items", "TEE-M-BLK", "items"),
    ("customer", "amy", "customer"),
    ("order", DROP, "order"),
    ("customer", DROP, "customer"),
    ("items", DROP, "items"),
    ("type", DROP, "type"),
    ("customer.id", DROP, "customer.id"),
    ("order.placed_at", DROP, "order.placed_at"),
    ("items.0.unit_price", DROP, "items.0.unit_price"),
    ("type", "exchange", "exchange_for"),
    ("complaint", {"category": "weather"}, "complaint.category"),
    # NUL can't be stored in PostgreSQL text; it must be refused, not crash the insert.
    ("order.id", "SO-\u0000-1", "order.id"),
    ("customer.id", "C-\u0000", "customer.id"),
    ("description", "nul \u0000 inside", "description"),
]


def _case(**overrides: Any) -> dict[str, Any]:
    return request_body(now=datetime.now(UTC), **overrides)


@pytest.mark.parametrize("path", ["/v1/cases", "/v1/policy/evaluate"])
@pytest.mark.parametrize(("dotted", "value", "field"), CASE_BODY_ERRORS, ids=lambda v: str(v)[:40])
async def test_bad_case_body(api: Api, path: str, dotted: str, value: Any, field: str) -> None:
    body = _edit(_case(), dotted, value)
    response = await api.request("POST", path, "storefront", json=body)
    assert_problem(response, 422, field=field, type_suffix="validation-error")


async def test_items_total_above_the_limit(api: Api) -> None:
    body = _case(
        items=[
            {"sku": f"GOLD-{n}", "quantity": 10000, "unit_price": "99999999.99"} for n in range(3)
        ]
    )
    response = await api.request("POST", "/v1/cases", "storefront", json=body)
    assert_problem(response, 422, field="items")


@dataclass(frozen=True)
class Raw:
    content: bytes
    content_type: str = "application/json"


RAW_BODIES = {
    "malformed": Raw(b'{"type": "return", "order": '),
    "trailing garbage": Raw(b'{"type": "return"} and more'),
    "empty": Raw(b""),
    "array": Raw(b"[]"),
    "string": Raw(b'"return"'),
    "number": Raw(b"12"),
    "null": Raw(b"null"),
    "not utf-8": Raw(b'{"type": "\xff\xfe"}'),
    "bare NaN": Raw(b'{"type": "return", "items": [{"sku": "A", "unit_price": NaN}]}'),
    "bare Infinity": Raw(b'{"type": "return", "items": [{"sku": "A", "unit_price": Infinity}]}'),
    "deeply nested": Raw(b'{"type": "return", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "form encoded": Raw(b"type=return", "application/x-www-form-urlencoded"),
    "text": Raw(b'{"type": "return"}', "text/plain"),
}


@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
@pytest.mark.parametrize("path", ["/v1/cases", "/v1/policy/evaluate"])
async def test_unparseable_body(api: Api, path: str, raw: Raw) -> None:
    response = await api.request(
        "POST", path, "storefront", content=raw.content, headers={"Content-Type": raw.content_type}
    )
    assert 400 <= response.status_code < 500, response.text
    body = assert_problem(response, response.status_code)
    assert body.get("errors"), body
    assert all(error["field"] for error in body["errors"])


async def test_malformed_json_names_the_body(api: Api) -> None:
    response = await api.request(
        "POST",
        "/v1/cases",
        "storefront",
        content=b'{"type": "return",',
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 422, field="body")


# ---- a live case: actions, customer actions, events -------------------------------------


@pytest.fixture(scope="session")
async def live(api: Api) -> dict[str, Any]:
    case = await api.open()
    await api.reach(case["id"], "awaiting_shipment", recorded=True)
    return case


AGENT_ERRORS: list[tuple[Any, str]] = [
    ({"action": "teleport"}, "action"),
    ({"notes": "no action"}, "action"),
    ({"action": 5}, "action"),
    ({"action": "approve", "notes": 5}, "notes"),
    ({"action": "approve", "notes": "n" * 5000}, "notes"),
    ({"action": "approve", "bogus": True}, "bogus"),
    ({"action": "reject"}, "reason"),
    ({"action": "reject", "reason": ""}, "reason"),
    ({"action": "propose", "resolution": "refund", "amount": "1.234"}, "amount"),
    ({"action": "propose", "resolution": "refund", "amount": "-5"}, "amount"),
    ({"action": "propose", "resolution": "refund", "amount": "NaN"}, "amount"),
    ({"action": "propose", "resolution": "refund", "amount": "1e12"}, "amount"),
    ({"action": "propose", "resolution": "gold_bars"}, "resolution"),
    ({"action": "record_inspection", "result": "maybe"}, "result"),
    ({"action": "note", "message": "nul \u0000 inside"}, "message"),
    ([{"action": "approve"}], "body"),
]


@pytest.mark.parametrize(("body", "field"), AGENT_ERRORS, ids=lambda v: str(v)[:40])
async def test_bad_agent_action(api: Api, live: dict[str, Any], body: Any, field: str) -> None:
    response = await api.request("POST", f"/v1/cases/{live['id']}/actions", "agent", json=body)
    assert_problem(response, 422, field=field)


CUSTOMER_ERRORS: list[tuple[Any, str]] = [
    ({"action": "approve"}, "action"),
    ({"action": "rate", "score": 6}, "score"),
    ({"action": "rate", "score": "great"}, "score"),
    (
        {"action": "provide_tracking", "carrier": "Black Cat", "tracking_number": "x"},
        "tracking_number",
    ),
    (
        {"action": "provide_tracking", "carrier": "Black Cat", "tracking_number": "T" * 65},
        "tracking_number",
    ),
    ({"action": "provide_tracking", "tracking_number": "BC123"}, "carrier"),
    ({"action": "reply", "message": "r" * 5000}, "message"),
    (
        {"action": "provide_tracking", "carrier": "Black\u0000Cat", "tracking_number": "BC123"},
        "carrier",
    ),
]


@pytest.mark.parametrize(("body", "field"), CUSTOMER_ERRORS, ids=lambda v: str(v)[:40])
async def test_bad_customer_action(api: Api, live: dict[str, Any], body: Any, field: str) -> None:
    response = await api.request(
        "POST", f"/v1/cases/{live['id']}/customer-actions", token_of(live), json=body
    )
    assert_problem(response, 422, field=field)


def _event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        # Fixed, so the test IDs built from it are the same in every process (pytest-xdist);
        # each test opens its own case, so a repeat across tests is never a duplicate.
        "event_id": "ev-bad-input",
        "type": "inspection.completed",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "data": {"result": "pass"},
    }
    for key, value in overrides.items():
        if value is DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


EVENT_ERRORS: list[tuple[dict[str, Any], str]] = [
    (_event(type="teleport.done"), "type"),
    (_event(type=None), "type"),
    (_event(event_id=DROP), "event_id"),
    (_event(event_id=""), "event_id"),
    (_event(event_id="e" * 300), "event_id"),
    (_event(occurred_at="yesterday"), "occurred_at"),
    (_event(occurred_at=DROP), "occurred_at"),
    (_event(data="pass"), "data"),
    (_event(extra_field=1), "extra_field"),
    (_event(data={"result": "maybe"}), "data.result"),
    (_event(data={}), "data.result"),
    (_event(data={"result": "fail", "refund_amount": "-5"}), "data.refund_amount"),
    (_event(data={"result": "fail", "refund_amount": "12.345"}), "data.refund_amount"),
    (_event(data={"result": "fail", "refund_amount": "Infinity"}), "data.refund_amount"),
    (_event(type="carrier.exception", data={"kind": "stolen"}), "data.kind"),
    (_event(type="replacement.shipped", data={}), "data.tracking_number"),
    (_event(event_id="ev-\u0000"), "event_id"),
]


@pytest.mark.parametrize(("body", "field"), EVENT_ERRORS, ids=lambda v: str(v)[:60])
async def test_bad_event(api: Api, live: dict[str, Any], body: dict[str, Any], field: str) -> None:
    response = await api.request("POST", f"/v1/cases/{live['id']}/events", "integration", json=body)
    assert_problem(response, 422, field=field)


# ---- query parameters, sizes, unknown things ---------------------------------------------


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


LIST_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"limit": 0}, "limit"),
    ({"limit": -1}, "limit"),
    ({"limit": 201}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "not a cursor"}, "cursor"),
    ({"cursor": "!!!!"}, "cursor"),
    ({"cursor": _cursor("yesterday|R-1")}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode()}, "cursor"),
    ({"cursor": _cursor("2026-11-20T10:00:00+00:00|R-\u0000")}, "cursor"),
    ({"cursor": "c" * 500}, "cursor"),
    ({"type": "teleport"}, "type"),
    ({"status": "lost"}, "status"),
    ({"overdue": "maybe"}, "overdue"),
    ({"order_id": "o" * 300}, "order_id"),
    ({"order_id": "SO-\u0000"}, "order_id"),
    ({"customer_id": "C-\u0000"}, "customer_id"),
    ({"queue": "q\u0000"}, "queue"),
]


@pytest.mark.parametrize(("params", "field"), LIST_ERRORS, ids=lambda v: str(v)[:40])
async def test_bad_list_query(api: Api, params: dict[str, Any], field: str) -> None:
    response = await api.request("GET", "/v1/cases", "operator", params=params)
    assert_problem(response, 422, field=field)


async def test_any_cursor_of_the_pattern_pages(api: Api) -> None:
    # Every string the schema's cursor pattern admits is a position (here: past every case).
    response = await api.request(
        "GET", "/v1/cases", "operator", params={"cursor": "4070908800000000_R-ZZZZZZZZ"}
    )
    assert response.status_code == 200, response.text


def _too_large() -> bytes:
    body = _case(description="x" * 1_100_000)
    return json.dumps(body).encode()


async def test_body_over_one_megabyte_is_413(api: Api) -> None:
    response = await api.request(
        "POST",
        "/v1/cases",
        "storefront",
        content=_too_large(),
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413)


async def test_chunked_body_over_one_megabyte_is_413(api: Api) -> None:
    data = _too_large()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    # No Content-Length: the limit must hold on the bytes that actually arrive.
    response = await api.request(
        "POST",
        "/v1/cases",
        "storefront",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413)


UNKNOWN = "R-00000000"


async def test_unknown_case_is_404(api: Api, live: dict[str, Any]) -> None:
    for method, path, who, body in (
        ("GET", f"/v1/cases/{UNKNOWN}", "agent", None),
        ("GET", f"/v1/cases/{UNKNOWN}", "storefront", None),
        ("GET", "/v1/cases/not-a-case-id", "operator", None),
        ("GET", "/v1/cases/%00", "operator", None),
        ("GET", "/v1/cases/" + "R" * 300, "operator", None),
        ("POST", f"/v1/cases/{UNKNOWN}/actions", "agent", {"action": "note", "message": "hi"}),
        ("POST", f"/v1/cases/{UNKNOWN}/events", "integration", _event()),
        ("POST", "/v1/cases/R-%00/events", "integration", _event()),
    ):
        kwargs = {"json": body} if body is not None else {}
        response = await api.request(method, path, who, **kwargs)
        assert_problem(response, 404, type_suffix="case-not-found")
    # A customer token of another case never learns whether a case exists.
    response = await api.request(
        "POST", f"/v1/cases/{UNKNOWN}/customer-actions", token_of(live), json={"action": "cancel"}
    )
    assert_problem(response, 403)


async def test_unknown_route_and_method(api: Api) -> None:
    assert_problem(await api.request("GET", "/v1/nothing-here", "agent"), 404)
    assert_problem(await api.request("PUT", "/v1/cases", "agent", json={}), 405)
    assert_problem(await api.request("DELETE", f"/v1/cases/{UNKNOWN}", "agent"), 405)


async def test_long_idempotency_key_is_422(api: Api) -> None:
    response = await api.request(
        "POST", "/v1/cases", "storefront", json=_case(), headers={"Idempotency-Key": "k" * 500}
    )
    assert_problem(response, 422, field="idempotency-key")


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


async def test_extra_fields_are_kept_and_the_case_runs(api: Api) -> None:
    # DESIGN 6 allows fields beyond the listed ones; a storefront's own data nests a little.
    case = await api.open(order={"meta": {"channel": "app", "tags": _nested(10)}}, campaign="11.11")
    assert case["order"]["meta"]["tags"] == _nested(10)
    ready = await api.reach(case["id"], "awaiting_shipment", recorded=True)
    assert ready["order"]["meta"]["channel"] == "app"


@pytest.mark.parametrize("depth", [40, 250, 900])
@pytest.mark.parametrize(
    ("where", "field"), [("top", "x"), ("order", "order.meta"), ("item", "items.0.meta")]
)
@pytest.mark.parametrize("path", ["/v1/cases", "/v1/policy/evaluate"])
async def test_deeply_nested_json_is_refused(
    api: Api, path: str, where: str, field: str, depth: int
) -> None:
    # Accepted, such a case could not run: the worker can't decode input nested this deep.
    body = _case()
    if where == "top":
        body["x"] = _nested(depth)
    elif where == "order":
        body["order"]["meta"] = _nested(depth)
    else:
        body["items"][0]["meta"] = _nested(depth)
    raw = json.dumps(body).encode()
    response = await api.request(
        "POST", path, "storefront", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422, field=field)


async def test_deeply_nested_event_data_is_refused(api: Api, live: dict[str, Any]) -> None:
    body = _event(type="carrier.in_transit", data={"scan": _nested(300)})
    raw = json.dumps(body).encode()
    response = await api.request(
        "POST",
        f"/v1/cases/{live['id']}/events",
        "integration",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 422, field="data.scan")
