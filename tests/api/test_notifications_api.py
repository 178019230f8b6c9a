"""GET /v1/cases/{id}/notifications: the delivery log, against the mail a real SMTP server got."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from notifications.email import message_id_header
from tests.api.conftest import Api, assert_problem, token_of

FIELDS = {
    "id",
    "channel",
    "message",
    "locale",
    "recipient",
    "status",
    "attempts",
    "error",
    "created_at",
    "updated_at",
}


async def _log(api: Api, case_id: str, who: str = "agent") -> list[dict[str, Any]]:
    response = await api.request("GET", f"/v1/cases/{case_id}/notifications", who)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _settled_log(api: Api, case_id: str, email: str) -> list[dict[str, Any]]:
    """The customer's log once it names exactly the mails the SMTP server received."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        log = [n for n in await _log(api, case_id) if n["recipient"] == email]
        received = {str(m["Message-ID"]) for m in api.mail.to(email)}
        logged = {message_id_header(n["id"]) for n in log if n["status"] == "sent"}
        if len(received) >= 2 and logged == received and len(log) == len(received):
            return log
        assert loop.time() < deadline, f"log {log} never matched the mail {received}"
        await asyncio.sleep(0.05)


async def test_delivery_log_lists_the_mail_the_customer_got(api: Api) -> None:
    case = await api.open(customer={"locale": "zh-TW"})
    case_id, email = case["id"], case["customer"]["email"]
    await api.reach(case_id, "awaiting_shipment")

    log = await _settled_log(api, case_id, email)
    messages = [n["message"] for n in log]
    # Oldest first: the case was received before it was approved.
    assert messages[:2] == ["case_received", "case_approved"], messages
    for entry in log:
        assert set(entry) == FIELDS
        assert entry["id"].startswith(f"{case_id}:") and entry["id"].endswith(":email")
        assert entry["channel"] == "email"
        assert entry["locale"] == "zh-TW"
        assert entry["status"] == "sent"
        assert entry["attempts"] == 1
        assert entry["error"] is None
        created = datetime.fromisoformat(entry["created_at"])
        assert created.tzinfo is not None
        assert datetime.fromisoformat(entry["updated_at"]) >= created
    created_at = [datetime.fromisoformat(n["created_at"]) for n in log]
    assert created_at == sorted(created_at)

    # Operators read the same log.
    assert [n["id"] for n in await _log(api, case_id, "operator")][: len(log)] == [
        n["id"] for n in (await _log(api, case_id))[: len(log)]
    ]


async def test_delivery_log_roles(api: Api) -> None:
    case = await api.open()
    case_id = case["id"]
    await api.reach(case_id, "awaiting_shipment", recorded=True)
    path = f"/v1/cases/{case_id}/notifications"
    assert_problem(await api.request("GET", path, None), 401)
    assert_problem(await api.request("GET", path, "not-a-key"), 401)
    for who in ("storefront", "integration", token_of(case)):
        assert_problem(await api.request("GET", path, who), 403)


async def test_delivery_log_of_an_unknown_case_is_404(api: Api) -> None:
    for case_id in ("R-NOSUCH00", "R-" + "X" * 40, "R-%01"):
        response = await api.request("GET", f"/v1/cases/{case_id}/notifications", "operator")
        assert_problem(response, 404, type_suffix="case-not-found")
