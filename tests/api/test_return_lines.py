"""A return of several lines over HTTP (issue 11): each line's reason, the line the policy
leaves out listed with its rule, and an inspection's lines checked against the case before
they reach it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.console.forms import FormRefused, parse_action
from store.projection import refund_items
from tests.api.conftest import Api, assert_problem
from tests.support.factory import request_body

LINES: list[dict[str, Any]] = [
    {"sku": "TEE-M", "name": "T-shirt", "category": "apparel", "unit_price": "990.00",
     "reason": "size_fit"},
    {"sku": "BRUSH-1", "name": "Toothbrush", "category": "personal_hygiene",
     "unit_price": "300.00", "reason": "changed_mind"},
]  # fmt: skip


async def test_lines_with_their_own_reasons_and_an_excluded_line(api: Api) -> None:
    body = request_body(now=datetime.now(UTC), items=LINES)
    del body["reason"]  # every line carries its own
    opened = await api.request("POST", "/v1/cases", "storefront", json=body)
    assert opened.status_code == 201, opened.text
    case = opened.json()
    assert case["reason"] == "size_fit"
    assert [item["reason"] for item in case["items"]] == ["size_fit", "changed_mind"]
    decision = case["decision"]
    assert decision["eligible"] is True
    assert [(line["sku"], line["eligible"]) for line in decision["lines"]] == [
        ("TEE-M", True),
        ("BRUSH-1", False),
    ]
    assert decision["lines"][1]["rule"]["id"] == "non_returnable_category"
    assert decision["refund_estimate"] == {"amount": "990.00", "currency": "TWD"}
    assert "lines_excluded" in [rule["id"] for rule in decision["rules"]]

    # A line with no reason of its own and none on the case: the case's reason is missing.
    bare = request_body(now=datetime.now(UTC), items=[{**LINES[0], "reason": None}, LINES[1]])
    del bare["reason"]
    refused = await api.request("POST", "/v1/cases", "storefront", json=bare)
    assert_problem(refused, 422, field="reason")
    wrong = request_body(now=datetime.now(UTC), items=[{**LINES[0], "reason": "bored"}])
    assert_problem(
        await api.request("POST", "/v1/cases", "storefront", json=wrong),
        422,
        field="items.0.reason",
    )


async def test_an_inspection_naming_lines_the_case_does_not_take_back_is_refused(
    api: Api,
) -> None:
    body = request_body(now=datetime.now(UTC), items=LINES)
    case_id = (await api.request("POST", "/v1/cases", "storefront", json=body)).json()["id"]
    await api.reach(case_id, "awaiting_shipment")

    async def inspected(**data: Any) -> Any:
        return await api.request(
            "POST",
            f"/v1/cases/{case_id}/events",
            "integration",
            json={
                "event_id": f"ev-{case_id}-{len(data)}-{id(data)}",
                "type": "inspection.completed",
                "occurred_at": datetime.now(UTC).isoformat(),
                "data": data,
            },
        )

    # The toothbrush stayed with the customer: no result for it is taken.
    excluded = await inspected(lines=[{"sku": "BRUSH-1", "result": "fail"}])
    problem = assert_problem(excluded, 422, field="data.lines")
    assert "BRUSH-1" in problem["errors"][0]["message"]
    # A line named twice, and a result its lines contradict, name the field at fault.
    twice = [{"sku": "TEE-M", "result": "pass"}, {"sku": "TEE-M", "result": "fail"}]
    assert_problem(await inspected(lines=twice), 422, field="data.lines")
    contradicted = await inspected(result="pass", lines=[{"sku": "TEE-M", "result": "fail"}])
    assert_problem(contradicted, 422, field="data.result")
    assert_problem(await inspected(), 422, field="data.result")
    # Nothing reached the case.
    assert (await api.case(case_id))["status"] == "awaiting_shipment"


def test_the_console_form_sends_a_row_per_line_given_a_result() -> None:
    form = {
        "lines.0.sku": "TEE-M",
        "lines.0.result": "pass",
        "lines.1.sku": "LAMP-1",
        "lines.1.result": "fail",
        "lines.1.refund_amount": "500",
        "lines.1.notes": "Water inside.",
        "lines.2.sku": "CAP-1",
        "lines.2.result": "",
    }
    action = parse_action("record_inspection", form)
    assert action.result == "fail"
    assert [(line.sku, line.result, line.refund_amount) for line in action.lines] == [
        ("TEE-M", "pass", None),
        ("LAMP-1", "fail", 500),
    ]
    assert action.lines[1].notes == "Water inside." and not action.lines[1].keep_item
    # No line judged and no result for the whole: the form names the result.
    with pytest.raises(FormRefused) as refused:
        parse_action("record_inspection", {"lines.0.sku": "TEE-M"})
    assert [error["field"] for error in refused.value.errors] == ["result"]


def test_the_reports_share_a_refund_over_the_lines_taken_back_only() -> None:
    fields = {
        "id": "R-1",
        "type": "return",
        "queue": "customer_service",
        "reason": "size_fit",
        "created_at": "2026-11-23T02:00:00+00:00",
        "order": {"currency": "TWD"},
        "refund": {"amount": "1000.00", "currency": "TWD"},
        "items": [LINES[0], {**LINES[0], "sku": "CAP-1", "unit_price": "330.00"}, LINES[1]],
        "decision": {
            "lines": [
                {"sku": "TEE-M", "eligible": True},
                {"sku": "CAP-1", "eligible": True},
                {"sku": "BRUSH-1", "eligible": False},
            ]
        },
    }
    shares = {row["sku"]: row["cents"] for row in refund_items(fields)}
    # 990 : 330 over the two lines taken back; the toothbrush gets nothing.
    assert shares == {"TEE-M": 75000, "CAP-1": 25000}
