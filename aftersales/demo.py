"""`aftersales demo`: storefront, agent, customer, carrier and warehouse against a running stack.

Everything goes over the public HTTP API with the configured keys, exactly as real callers
would, so the Temporal UI fills with live cases in a variety of states. Some cases are left
mid-flight on purpose: they show what waiting on a named deadline looks like.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from config.settings import Settings

ROLES_NEEDED = ("storefront", "agent", "integration", "operator")
POLL_SECONDS = 0.2
STEP_TIMEOUT = 30.0
TERMINAL = frozenset({"closed", "rejected", "cancelled", "expired"})


class DemoError(Exception):
    """The stack did not do what the demo expected (or was not there)."""


@dataclass
class Case:
    """A case the demo opened: its ID and the customer's token."""

    id: str
    token: str
    scenario: str


@dataclass
class Demo:
    """The actors' shared HTTP client and keys, and what each scenario left behind."""

    http: httpx.AsyncClient
    keys: dict[str, str]
    tag: str
    timeout: float = STEP_TIMEOUT
    opened: list[Case] = field(default_factory=list)
    _serial: int = 0

    def say(self, case: Case | str, status: str, text: str) -> None:
        """One line per step, so the output reads as the story of each case."""
        case_id = case.id if isinstance(case, Case) else case
        print(f"{case_id:<11} {status:<17} → {text}", flush=True)

    async def call(self, method: str, path: str, *, key: str, json: Any = None) -> Any:
        """One API call; anything but a 2xx stops the demo."""
        try:
            response = await self.http.request(
                method, path, json=json, headers={"Authorization": f"Bearer {key}"}
            )
        except httpx.HTTPError as err:
            raise DemoError(f"{method} {path} failed: {err!r}") from err
        if response.is_success:
            return response.json()
        try:
            problem = response.json()
            detail = f"{problem.get('title')} {problem.get('detail')}"
        except ValueError:
            detail = response.text[:300]
        raise DemoError(f"{method} {path} answered {response.status_code}: {detail}")

    def order(self, *, delivered_days_ago: int) -> dict[str, Any]:
        """A delivered order with an ID unique to this run, so no case is a duplicate."""
        self._serial += 1
        now = datetime.now(UTC)
        delivered = now - timedelta(days=delivered_days_ago)
        return {
            "id": f"SO-DEMO-{self.tag}-{self._serial:02d}",
            "placed_at": (delivered - timedelta(days=3)).isoformat(),
            "shipped_at": (delivered - timedelta(days=2)).isoformat(),
            "delivered_at": delivered.isoformat(),
            "currency": "TWD",
            "payment_method": "card",
        }

    def customer_body(self, name: str, locale: str = "en") -> dict[str, Any]:
        """A customer unique to this run: repeated demos must not make anyone a serial returner."""
        customer_id = f"C-DEMO-{self.tag}-{self._serial:02d}"
        return {
            "id": customer_id,
            "email": f"{name.lower()}.{self.tag.lower()}@example.com",
            "phone": "+886912345678",
            "locale": locale,
            "channel": "email",
            "address": {
                "name": name,
                "line1": "7 Xinyi Road, Sec. 5",
                "city": "Taipei",
                "postal_code": "110",
                "country": "TW",
            },
        }

    async def open(self, scenario: str, body: dict[str, Any], story: str) -> Case:
        """The storefront opens a return."""
        view = await self.call("POST", "/v1/cases", key=self.keys["storefront"], json=body)
        case = Case(
            id=view["id"],
            token=view["status_url"].rstrip("/").rsplit("/", 1)[-1],
            scenario=scenario,
        )
        self.opened.append(case)
        self.say(case, view["status"], f"storefront opens: {story}")
        return case

    async def expect(
        self,
        case: Case,
        status: str,
        until: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Poll the case until it shows `status` (and `until` holds); fail clearly after a while."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            # The API wrote the case when it opened it: a read always finds it.
            view: dict[str, Any] = await self.call(
                "GET", f"/v1/cases/{case.id}", key=self.keys["operator"]
            )
            now = view["status"]
            if now == status and (until is None or until(view)):
                return view
            # A case that ended elsewhere will never get there; no point waiting out the clock.
            if now in TERMINAL or loop.time() > deadline:
                raise DemoError(
                    f"{case.id} ({case.scenario}) did not reach {status!r} within "
                    f"{self.timeout:.0f} s; it is {now!r}. Is the worker running?"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def event(self, case: Case, type: str, **data: Any) -> None:
        """A carrier, warehouse or payment provider reports an event."""
        body = {
            "event_id": f"demo-{case.id}-{type}-{secrets.token_hex(3)}",
            "type": type,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": data,
        }
        await self.call(
            "POST", f"/v1/cases/{case.id}/events", key=self.keys["integration"], json=body
        )

    async def report(
        self, case: Case, status: str, text: str, type: str, *, then: str, **data: Any
    ) -> dict[str, Any]:
        """Tell the step, send the partner's event, and wait for the case to reach `then`."""
        self.say(case, status, text)
        await self.event(case, type, **data)
        return await self.expect(case, then)

    async def agent(self, case: Case, action: str, **fields: Any) -> dict[str, Any]:
        """A customer-service agent acts on the case."""
        body = {"action": action, "actor": "demo-agent", **fields}
        view: dict[str, Any] = await self.call(
            "POST", f"/v1/cases/{case.id}/actions", key=self.keys["agent"], json=body
        )
        return view

    async def customer(self, case: Case, action: str, **fields: Any) -> dict[str, Any]:
        """The customer acts with their own case token, as the status page does."""
        view: dict[str, Any] = await self.call(
            "POST",
            f"/v1/cases/{case.id}/customer-actions",
            key=case.token,
            json={"action": action, **fields},
        )
        return view


def item(
    sku: str, name: str, price: str, *, opened: bool = False, warranty_months: int = 0
) -> dict[str, Any]:
    """One order line."""
    return {
        "sku": sku,
        "name": name,
        "category": "apparel" if sku.startswith("TEE") else "electronics",
        "quantity": 1,
        "unit_price": price,
        "opened": opened,
        "warranty_months": warranty_months,
    }


def return_body(
    demo: Demo,
    *,
    reason: str,
    items: list[dict[str, Any]],
    delivered_days_ago: int = 2,
    name: str = "Amy",
    evidence: list[str] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """A return request as a storefront sends it."""
    return {
        "type": "return",
        "order": demo.order(delivered_days_ago=delivered_days_ago),
        "customer": demo.customer_body(name),
        "items": items,
        "reason": reason,
        "description": description,
        "evidence": evidence or [],
    }


def _pickup_tracking(view: dict[str, Any]) -> str | None:
    inbound = [s for s in view.get("shipments", []) if s["direction"] == "inbound"]
    return inbound[0]["tracking_number"] if inbound else None


# ---- scenarios: each opens one case and moves it as far as its story goes ---------------


async def auto_approved(demo: Demo) -> Case:
    """Unopened and low value: auto-approved; the customer ships it; closed with a rating."""
    case = await demo.open(
        "auto-approved, customer ships",
        return_body(
            demo,
            reason="size_fit",
            items=[item("TEE-M-BLK", "T-shirt", "990.00")],
            description="Too small",
        ),
        "T-shirt, size_fit, TWD 990, unopened",
    )
    await demo.expect(case, "awaiting_shipment")
    tracking = f"BC{secrets.randbelow(10**9):09d}"
    demo.say(case, "awaiting_shipment", f"customer ships ({tracking})")
    await demo.customer(case, "provide_tracking", carrier="Black Cat", tracking_number=tracking)
    demo.say(case, "awaiting_shipment", "carrier: picked up")
    await demo.event(case, "carrier.picked_up", tracking_number=tracking)
    view = await demo.expect(
        case, "in_transit", until=lambda v: (v["refund"] or {}).get("status") == "succeeded"
    )
    demo.say(
        case, "in_transit", f"fast refund paid at the first scan ({view['refund']['refund_id']})"
    )
    await demo.report(
        case, "in_transit", "warehouse: received", "warehouse.received", then="inspecting"
    )
    await demo.report(
        case,
        "inspecting",
        "warehouse: inspection passed (grade A)",
        "inspection.completed",
        result="pass",
        grade="A",
        notes="Unworn, tags on.",
        then="resolved",
    )
    demo.say(case, "resolved", "customer rates 5/5 before the survey goes out")
    await demo.customer(case, "rate", score=5, comment="Refunded before the parcel even arrived!")
    await demo.expect(case, "closed")
    return case


async def seller_fault_pickup(demo: Demo) -> Case:
    """Defective with a photo: the shop books a pickup; left waiting for the inspection."""
    case = await demo.open(
        "seller fault, pickup booked",
        return_body(
            demo,
            reason="defective",
            name="Ben",
            items=[
                item("HEADSET-BT", "Bluetooth headset", "2490.00", opened=True, warranty_months=12)
            ],
            evidence=["https://example.com/photos/headset-crackle.mp4"],
            description="Left ear crackles",
        ),
        "headset, defective with evidence, TWD 2490",
    )
    view = await demo.expect(case, "awaiting_shipment", until=lambda v: bool(_pickup_tracking(v)))
    tracking = _pickup_tracking(view)
    await demo.report(
        case,
        "awaiting_shipment",
        f"carrier picks it up ({tracking}, booked by the shop)",
        "carrier.picked_up",
        tracking_number=tracking,
        then="in_transit",
    )
    await demo.report(
        case,
        "in_transit",
        "warehouse: received; left waiting for inspection (1 business day)",
        "warehouse.received",
        then="inspecting",
    )
    return case


async def opened_manual_review(demo: Demo) -> Case:
    """Opened item, customer reason: an agent approves; inspection fails after the fast refund."""
    case = await demo.open(
        "opened item, agent approves",
        return_body(
            demo,
            reason="changed_mind",
            name="Chen",
            items=[
                item("KETTLE-1L", "Electric kettle", "1490.00", opened=True, warranty_months=12)
            ],
            description="Changed my mind",
        ),
        "kettle, changed_mind, opened (10% restocking fee)",
    )
    await demo.expect(case, "awaiting_review")
    demo.say(case, "awaiting_review", "agent approves")
    await demo.agent(case, "approve", notes="Opened but complete; restocking fee applies.")
    await demo.expect(case, "awaiting_shipment")
    tracking = f"BC{secrets.randbelow(10**9):09d}"
    demo.say(case, "awaiting_shipment", f"customer ships ({tracking})")
    await demo.customer(case, "provide_tracking", carrier="Black Cat", tracking_number=tracking)
    await demo.report(
        case,
        "awaiting_shipment",
        "carrier: picked up",
        "carrier.picked_up",
        tracking_number=tracking,
        then="in_transit",
    )
    await demo.report(
        case, "in_transit", "warehouse: received", "warehouse.received", then="inspecting"
    )
    demo.say(case, "inspecting", "warehouse: inspection FAILED (limescale; used) → escalates")
    await demo.event(
        case, "inspection.completed", result="fail", grade="C", notes="Limescale inside; used."
    )
    view = await demo.expect(case, "resolved")
    demo.say(case, "resolved", f"priority {view['priority']}; left for the follow-up survey")
    return case


async def info_requested(demo: Demo) -> Case:
    """No evidence: the agent asks for a photo, the customer replies; back in review."""
    case = await demo.open(
        "agent asks for info",
        return_body(
            demo,
            reason="not_as_described",
            name="Dana",
            items=[item("TEE-L-RED", "T-shirt, red", "1290.00")],
            description="The colour is much darker than the photo",
        ),
        "T-shirt, not_as_described, no evidence",
    )
    await demo.expect(case, "awaiting_review")
    demo.say(case, "awaiting_review", "agent asks for a photo")
    await demo.agent(
        case, "request_info", question="Could you send a photo of the shirt in daylight?"
    )
    await demo.expect(case, "awaiting_customer")
    demo.say(case, "awaiting_customer", "customer replies with a photo")
    await demo.customer(
        case, "reply", message="Here it is.", evidence=["https://example.com/photos/red-tee.jpg"]
    )
    await demo.expect(case, "awaiting_review")
    demo.say(
        case, "awaiting_review", "left for an agent to decide (review deadline: 1 business day)"
    )
    return case


async def outside_window(demo: Demo) -> Case:
    """Defective but delivered 40 days ago: rejected at once, pointed to a warranty repair."""
    case = await demo.open(
        "outside the window",
        return_body(
            demo,
            reason="defective",
            name="Eli",
            delivered_days_ago=40,
            items=[item("MOUSE-WL", "Wireless mouse", "690.00", opened=True, warranty_months=12)],
            evidence=["https://example.com/photos/mouse.jpg"],
            description="Scroll wheel broke",
        ),
        "mouse, defective, delivered 40 days ago",
    )
    view = await demo.expect(case, "rejected")
    rules = ", ".join(rule["id"] for rule in view["decision"]["rules"])
    demo.say(case, "rejected", f"policy: {rules}; alternatives {view['decision']['alternatives']}")
    return case


async def returnless(demo: Demo) -> Case:
    """Defective and cheap: refunded without taking the item back."""
    case = await demo.open(
        "returnless refund",
        return_body(
            demo,
            reason="defective",
            name="Fay",
            items=[item("CABLE-USBC", "USB-C cable", "150.00", opened=True)],
            evidence=["https://example.com/photos/cable.jpg"],
            description="Doesn't charge",
        ),
        "USB-C cable, defective, TWD 150",
    )
    view = await demo.expect(case, "resolved")
    refund = view["refund"]
    demo.say(
        case,
        "resolved",
        f"refunded {refund['currency']} {refund['amount']}; customer keeps the item",
    )
    return case


@dataclass(frozen=True)
class Scenario:
    """A story for one case and the status it is left in."""

    name: str
    play: Callable[[Demo], Coroutine[Any, Any, Case]]
    ends_in: str


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("auto-approved, customer ships", auto_approved, "closed"),
    Scenario("seller fault, pickup booked", seller_fault_pickup, "inspecting"),
    Scenario("opened item, agent approves", opened_manual_review, "resolved"),
    Scenario("agent asks for info", info_requested, "awaiting_review"),
    Scenario("outside the window", outside_window, "rejected"),
    Scenario("returnless refund", returnless, "resolved"),
)


def _keys_by_role(settings: Settings) -> dict[str, str]:
    by_role = {role: key for key, role in settings.keys_by_token().items()}
    missing = [role for role in ROLES_NEEDED if role not in by_role]
    if missing:
        raise DemoError(f"AFTERSALES_API_KEYS has no key for: {', '.join(missing)}")
    return by_role


async def play(*, api_url: str, cases: int, settings: Settings) -> None:
    """Open `cases` demo cases against the running API and move each along its story."""
    chosen = [SCENARIOS[i % len(SCENARIOS)] for i in range(cases)]
    try:
        opened = await _play(api_url=api_url, scenarios=chosen, keys=_keys_by_role(settings))
    except* DemoError as errors:
        raise SystemExit(
            "demo failed: " + "; ".join(str(err) for err in errors.exceptions)
        ) from None
    _summary(opened, chosen, api_url, settings)


async def _play(*, api_url: str, scenarios: list[Scenario], keys: dict[str, str]) -> list[Case]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30.0) as http:
        try:
            ready = await http.get("/readyz")
        except httpx.HTTPError as err:
            raise DemoError(
                f"No API at {api_url} ({err!r}); start it with `aftersales dev`."
            ) from err
        if not ready.is_success:
            raise DemoError(f"The API at {api_url} is not ready: {ready.text[:300]}")
        demo = Demo(http=http, keys=keys, tag=secrets.token_hex(2).upper())
        print(f"Playing {len(scenarios)} return case(s) against {api_url}\n", flush=True)
        # Concurrently, as a shop's cases arrive; each line names its case.
        async with asyncio.TaskGroup() as group:
            for scenario in scenarios:
                group.create_task(scenario.play(demo))
        return demo.opened


def _summary(opened: list[Case], chosen: list[Scenario], api_url: str, settings: Settings) -> None:
    """Where each case was left, and where to look at them."""
    ends = {scenario.name: scenario.ends_in for scenario in chosen}
    print("\nDone. Cases and where they were left:")
    for case in opened:
        print(f"  {case.id:<11} {ends[case.scenario]:<16} {case.scenario}")
    # The demo can't ask the API where the UI is; the dev stack's default (or
    # AFTERSALES_DEV_UI_PORT) is the best guess, and the footnote says so.
    ui = f"http://localhost:{settings.dev_ui_port}/namespaces/{settings.temporal_namespace}/workflows"
    query = quote('CaseStatus="awaiting_review"')
    print(
        f"\nEvery case is a workflow whose ID is the case ID. In the Temporal UI:\n"
        f"  {ui}\n"
        f"  open one for its history, timers and current details, or filter by search attribute:\n"
        f"  {ui}?query={query}\n"
        f"  (another port if `aftersales dev --ui-port` said so)\n"
        f"Or from the CLI: temporal workflow list --query 'CaseStatus=\"awaiting_review\"'\n"
        f"The API lists them too: "
        f"curl -H 'Authorization: Bearer <operator key>' {api_url}/v1/cases\n"
        f"Agents find the cases left for them in the console: {api_url}/console"
    )
