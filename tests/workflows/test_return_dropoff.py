"""Convenience-store drop-off returns (issue 11, "Ways to send the item back"): the carrier's
`POST /dropoffs` code, its QR image in the mail and on the status page, its expiry."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import httpx

from api.app import create_app
from domain.models import ReturnMethod
from domain.policy import Policy, ReturnsPolicy
from notifications.codes import qr_png, qr_svg
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.support.serving import serving
from tests.workflows.helpers import (
    deadline,
    entry,
    finish,
    mail_names,
    mail_text,
    mails_arrive,
    reach,
    reach_deadline,
    requests_for,
    signal,
    sleep_past,
    stop,
)

DROPOFFS = Policy(
    returns=ReturnsPolicy(
        return_methods=[ReturnMethod.PICKUP, ReturnMethod.SHIP, ReturnMethod.DROPOFF]
    )
)
PNG = b"\x89PNG\r\n\x1a\n"


def _approved_mail(stack: Stack, address: str, case_id: str) -> EmailMessage:
    found = [
        m
        for m in stack.mail.to(address)
        if str(m["Message-ID"]).startswith(f"<{case_id}.case_approved.")
    ]
    assert len(found) == 1, [m["Message-ID"] for m in stack.mail.to(address)]
    message = found[0]
    assert isinstance(message, EmailMessage)
    return message


async def _status(stack: Stack, policy: Policy, token: str) -> list[httpx.Response]:
    """The case's status page and its drop-off image, from the app over real HTTP."""
    app = create_app(stack.settings, client=stack.client, engine=stack.engine, policy_=policy)
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        return [
            await http.get(f"/status/{token}"),
            await http.get(f"/status/{token}/dropoff.svg"),
            await http.get("/status/no-such-token/dropoff.svg"),
        ]


async def test_dropoff_with_its_code_and_barcode_in_the_mail(stack: Stack) -> None:
    now = await stack.now()
    case = case_input(now=now, policy=DROPOFFS, return_method="dropoff", dropoff_chain="familymart")
    decision = case.decision
    assert (decision.shipping_payer, decision.return_method) == ("customer", "dropoff")
    # The policy's spelling of the chain, whatever the storefront's.
    assert decision.dropoff_chain == "FamilyMart"
    assert [r.id for r in decision.rules][:3] == [
        "in_window",
        "customer_pays_shipping",
        "dropoff_return",
    ]
    expires = (now + timedelta(days=5)).replace(microsecond=0)
    stack.peers.expire_dropoff(case.case_id, expires)
    handle = await stack.start(case)

    view = await reach_deadline(handle, "customer_shipment_reminder")
    assert view.status == "awaiting_shipment"
    # The code's expiry is the customer's deadline, not the policy's 7 days.
    assert deadline(view, "customer_shipment").due_at == expires
    # Nothing to report: the store scans the parcel.
    assert "provide_tracking" not in view.customer_actions
    [booked] = stack.peers.dropoffs_for(case.case_id)
    assert booked["chain"] == "FamilyMart" and booked["parcels"][0]["sku"] == "TEE-M-BLK"
    assert {r.idempotency_key for r in requests_for(stack.peers, "/dropoffs", case.case_id)} == {
        f"{case.case_id}:dropoff"
    }
    assert stack.peers.pickups_for(case.case_id) == []
    [parcel] = view.shipments
    assert parcel.dropoff is not None and parcel.tracking_number is not None
    code = parcel.dropoff.code
    assert (parcel.dropoff.chain, parcel.dropoff.expires_at) == ("FamilyMart", expires)
    assert code.isdigit() and len(code) == 12
    assert entry(view, "dropoff_booked").data == {"code": code, "chain": "FamilyMart"}

    await mails_arrive(stack.mail, case, "case_approved")
    text = mail_text(stack.mail, case, "case_approved")
    assert f"Drop-off code: {code}" in text
    assert "FamilyMart store" in text and "You pay the postage at the counter." in text
    assert parcel.label_url is not None and parcel.label_url in text
    assert case.request.customer.email
    mail = _approved_mail(stack, case.request.customer.email, case.case_id)
    html = mail.get_body(("html",))
    assert html is not None
    images = [part for part in mail.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1
    cid = str(images[0]["Content-ID"]).strip("<>")
    assert f'src="cid:{cid}"' in str(html.get_content())
    assert images[0].get_content().startswith(PNG)
    # The image is this case's code, as a QR made locally: not a placeholder, not another's.
    assert images[0].get_content() == qr_png(code)
    assert images[0].get_content_disposition() == "inline"

    page, image, unknown = await _status(stack, DROPOFFS, case.token)
    assert page.status_code == 200
    assert code in page.text and f'src="/status/{case.token}/dropoff.svg"' in page.text
    assert "img-src 'self'" in page.headers["content-security-policy"]
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/svg+xml"
    assert image.headers["cache-control"] == "private, max-age=86400"
    assert image.content.lstrip().startswith(b"<svg") and code.encode() in image.content
    assert image.content == qr_svg(code)
    assert unknown.status_code == 404

    # The store's first scan moves the case on, as a pickup's does.
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await mails_arrive(stack.mail, case, "picked_up")
    await stop(stack.client, handle)


async def test_a_dropoff_nobody_makes_expires_with_the_code(stack: Stack) -> None:
    now = await stack.now()
    case = case_input(now=now, policy=DROPOFFS, return_method="dropoff")
    assert case.decision.dropoff_chain == "7-ELEVEN"  # the policy's first chain
    # Two days: too short for the policy's 3-day reminder, so none is sent.
    expires = (now + timedelta(days=2)).replace(microsecond=0)
    stack.peers.expire_dropoff(case.case_id, expires)
    handle = await stack.start(case)
    view = await reach_deadline(handle, "customer_shipment")
    assert deadline(view, "customer_shipment").due_at == expires
    assert "customer_shipment_reminder" not in {d.name for d in view.deadlines}

    await sleep_past(stack.env, handle, "customer_shipment")
    result = await finish(stack.env, handle, "expired")
    assert mail_names(stack.mail, case) == ["case_received", "case_approved", "case_expired"]
    assert "before its drop-off code expired" in mail_text(stack.mail, case, "case_expired")
    assert stack.peers.refunds_for(case.case_id) == []
    assert not result.sla_breached
