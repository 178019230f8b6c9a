"""The customer's status page and its no-JavaScript forms, over real HTTP (DESIGN 6)."""

from __future__ import annotations

import asyncio
import html
from typing import Any

from tests.api.conftest import Api, assert_problem, token_of

TRACKING_FORM = 'id="form-provide_tracking"'


async def _page_until(api: Api, token: str, text: str, timeout: float = 20) -> str:
    """GET the status page until it shows `text` (the case moves on its own worker)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    body = ""
    while loop.time() < deadline:
        response = await api.request("GET", f"/status/{token}", None)
        assert response.status_code == 200, response.text
        body = response.text
        if text in body:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"the status page never showed {text!r}; last page:\n{body}")


async def _awaiting_shipment(api: Api, **overrides: Any) -> tuple[str, str]:
    case = await api.open(**overrides)
    await api.reach(case["id"], "awaiting_shipment", recorded=True)
    return case["id"], token_of(case)


def _post(api: Api, token: str, form: dict[str, str], **headers: str) -> Any:
    return api.request(
        "POST", f"/status/{token}/actions", None, data=form, headers=headers, follow_redirects=False
    )


async def test_page_of_a_live_case_in_english(api: Api) -> None:
    case_id, token = await _awaiting_shipment(api)
    body = await _page_until(api, token, TRACKING_FORM)
    response = await api.request("GET", f"/status/{token}", None)
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert 'name="viewport"' in body and "<script" not in body
    assert case_id in body
    assert "<strong>awaiting shipment</strong>" in body
    assert 'class="current" aria-current="step">awaiting shipment' in body
    assert 'class="done">awaiting review' in body
    # The deadline, in the customer's (here the shop's) timezone, named for the customer.
    assert 'id="deadline"' in body and "(Asia/Taipei)" in body
    assert "customer&#39;s return shipment" in body
    assert 'name="tracking_number"' in body and 'value="provide_tracking"' in body
    # Only the forms the case takes now: no rating or accepting while the parcel is due.
    assert 'id="form-rate"' not in body and 'id="form-accept"' not in body
    case = await api.case(case_id)
    assert "provide_tracking" in case["customer_actions"]
    assert case["customer_actions"] == sorted(case["customer_actions"])


async def test_page_in_traditional_chinese(api: Api) -> None:
    _, token = await _awaiting_shipment(api, customer={"locale": "zh-TW"})
    body = await _page_until(api, token, TRACKING_FORM)
    assert '<html lang="zh-TW">' in body
    assert "<strong>待寄回</strong>" in body and "awaiting" not in body
    assert "追蹤號碼" in body and "(Asia/Taipei)" in body


async def test_page_in_simplified_chinese(api: Api) -> None:
    _, token = await _awaiting_shipment(api, customer={"locale": "zh-CN"})
    body = await _page_until(api, token, TRACKING_FORM)
    assert '<html lang="zh-CN">' in body and "快递单号" in body and "awaiting" not in body


async def test_unknown_token_is_404(api: Api) -> None:
    response = await api.request("GET", "/status/no-such-token", None)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    too_long = await api.request("GET", f"/status/{'x' * 300}", None)
    assert too_long.status_code == 404
    # An API client asking for JSON gets the usual problem.
    as_json = await api.request(
        "GET", "/status/no-such-token", None, headers={"Accept": "application/json"}
    )
    assert_problem(as_json, 404, type_suffix="case-not-found")
    posted = await _post(api, "no-such-token", {"action": "cancel"})
    assert posted.status_code == 404


async def test_tracking_form_then_carrier_moves_it_in_transit(api: Api) -> None:
    case_id, token = await _awaiting_shipment(api)
    await _page_until(api, token, TRACKING_FORM)
    form = {"action": "provide_tracking", "carrier": "Black Cat", "tracking_number": "BC42"}
    response = await _post(api, token, form)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/status/{token}"
    body = (await api.request("GET", f"/status/{token}", None)).text
    assert '<span class="tracking">BC42</span>' in body and "Black Cat" in body
    assert TRACKING_FORM not in body  # taken once; the form is gone
    case = await api.case(case_id)
    assert case["shipments"][0]["tracking_number"] == "BC42"
    assert any(e["kind"] == "tracking_provided" for e in case["timeline"])
    assert "provide_tracking" not in case["customer_actions"]

    await api.event(case_id, "carrier.picked_up", tracking_number="BC42")
    await api.reach(case_id, "in_transit")
    body = await _page_until(api, token, "<strong>in transit</strong>")
    assert "Your parcel is on its way to us." in body


async def test_bad_or_untimely_forms_are_4xx(api: Api) -> None:
    case_id, token = await _awaiting_shipment(api)
    await _page_until(api, token, TRACKING_FORM)
    # Not what the model takes: the page again, naming the field, 422.
    short = await _post(
        api, token, {"action": "provide_tracking", "carrier": "Black Cat", "tracking_number": "x"}
    )
    assert short.status_code == 422
    assert "text/html" in short.headers["content-type"]
    assert "Tracking number" in short.text and TRACKING_FORM in short.text
    unknown = await _post(api, token, {"action": "approve"})
    assert unknown.status_code == 422
    nul = await _post(api, token, {"action": "reply", "message": "a\x00b"})
    assert nul.status_code == 422
    as_json = await _post(api, token, {"action": "rate", "score": "9"}, Accept="application/json")
    assert_problem(as_json, 422, field="score")
    # A well-formed action the case can't take now: 409 with the page saying why.
    early = await _post(api, token, {"action": "rate", "score": "5"})
    assert early.status_code == 409, early.text
    assert "can't take 'rate' now" in html.unescape(early.text)
    untimely = await _post(api, token, {"action": "accept"}, Accept="application/json")
    assert_problem(untimely, 409, type_suffix="action-not-allowed")
    assert (await api.case(case_id))["status"] == "awaiting_shipment"


async def test_page_escapes_what_the_customer_wrote(api: Api) -> None:
    _, token = await _awaiting_shipment(api)
    await _page_until(api, token, TRACKING_FORM)
    response = await _post(
        api,
        token,
        {"action": "provide_tracking", "carrier": "<script>x</script>", "tracking_number": "T-1"},
    )
    assert response.status_code == 303
    body = (await api.request("GET", f"/status/{token}", None)).text
    assert "<script>" not in body and "&lt;script&gt;" in body
