"""The policy simulator on a seeded history with hand-computed answers, on both databases:
store.simulation directly on fresh databases, `POST /v1/policy/simulate` over the real stack,
and the console's page (its numbers are the API's).

The history is tests/support/simulation_cases.py: A-I in the month, K a child case, P1-P3
before the month. Under the default policy it happened so (what each case paid, and how):

    case  type       decision                          course       refund  fee
    A     return     auto, fast refund                 as decided     1000    0
    B     return     manual (opened), 10% fee          as decided      720   80
    C     return     manual (4000 > 3000), fast        running           0    0
    D     exchange   manual (3500 > 3000)              as decided        0    0
    P4    return     manual, high risk (P1-P3)         running           0    0
    E     return     rejected (20 days > 7)            rejected          0    0
    F     return     returnless, auto (defect, 150)    as decided      150    0
    G     complaint  manual                            running           0    0
    I     return     manual, high risk (P2, P3, P4)    running           0    0

so 9 cases (K left out), 8 eligible, 1 rejected, 2 auto (A, F) = 22.22%, 6 manual = 1.5 h at
15 minutes, 1 returnless, 3 fast refunds (A, B, C), 2 high risk, TWD 1870 refunded, 80 in fees.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from domain.models import CaseType, RuleHit
from domain.names import AgentRole
from domain.policy import Policy, ReturnsPolicy
from domain.rules import AGENT_EXCEPTION
from domain.simulation import SimulationReport
from store import service
from store.db import migrate
from store.simulation import simulate_period
from tests.api.conftest import Api, assert_problem
from tests.api.test_console import add_agent, form_token, sign_in
from tests.api.test_tracking_migration import engine  # noqa: F401  (fixture)
from tests.support.simulation_cases import DAY, seed, write_case

JUNE = datetime(2022, 6, 1, tzinfo=UTC)
JULY = datetime(2022, 7, 1, tzinfo=UTC)
TWD = "TWD"
DEFAULT_CATEGORIES = ReturnsPolicy().non_returnable_categories

STRICTER_WINDOW = Policy(returns=ReturnsPolicy(window_days=3))
HIGHER_AUTO_LIMIT = Policy(returns=ReturnsPolicy(auto_approve_max_value=Decimal(5000)))
NO_UNDERWEAR = Policy(
    returns=ReturnsPolicy(non_returnable_categories=[*DEFAULT_CATEGORIES, "underwear"])
)


def _run(engine: Engine, candidate: Policy) -> SimulationReport:  # noqa: F811
    with engine.connect() as conn:
        return simulate_period(conn, candidate, start=JUNE, end=JULY)


def _row(rows: list[Any], key: str | None) -> Any:
    return next(row for row in rows if row.key == key)


def _flips(report: SimulationReport) -> dict[str, list[tuple[str, str, str]]]:
    return {
        f.case_id: [(c.field, c.before, c.after) for c in f.changes] for f in report.flips_listed
    }


def test_store_credit_paid_and_what_a_bigger_bonus_would_pay(engine: Engine) -> None:  # noqa: F811
    migrate(engine)
    # A TWD 1,000 shirt returned for store credit under the defaults (no bonus), credited in
    # full on its decided terms.
    story = write_case(
        engine,
        opened=JUNE + 4 * DAY,
        delivered_days=2,
        sku="SHIRT",
        category="apparel",
        price="1000.00",
        resolution="store_credit",
    )
    credit = {"amount": "1000.00", "bonus": "0.00", "currency": TWD, "status": "issued",
              "kind": "store_credit", "credit_id": "sc_1"}  # fmt: skip
    story.step(DAY, status="resolved", store_credit=credit,
               resolved_at=(story.opened + DAY).isoformat())  # fmt: skip
    same = _run(engine, Policy())
    assert same.overall.happened.store_credit == {TWD: Decimal("1000.00")}
    assert same.overall.candidate.store_credit == {TWD: Decimal("1000.00")}
    assert same.overall.happened.refunds == {TWD: Decimal("0.00")}
    # A 10% bonus: the same case settles on the candidate's terms, 1,000 + 100.
    bonus = _run(engine, Policy(returns=ReturnsPolicy(store_credit_bonus_percent=Decimal(10))))
    assert bonus.overall.candidate.store_credit == {TWD: Decimal("1100.00")}
    assert bonus.overall.change.store_credit == {TWD: Decimal("100.00")}
    assert bonus.overall.candidate.refunds == {TWD: Decimal("0.00")}


def test_a_case_a_supervisor_overrode_is_left_out(engine: Engine) -> None:  # noqa: F811
    migrate(engine)
    seed(engine, start=JUNE)
    # Out of the window (12 days), approved anyway as a supervisor's exception: its stored
    # decision is a person's, and would read as a flip under the very policy that refused it.
    late = write_case(
        engine,
        opened=JUNE + 3 * DAY,
        delivered_days=12,
        sku="COAT",
        category="apparel",
        price="2000.00",
    )
    with Session(engine) as session:
        stored = service.case_view(session, service.get_case(session, case_id=late.case_id))
    assert not stored.decision.eligible
    rule = RuleHit(id=AGENT_EXCEPTION, message="Approved as an exception by sup@shop.example.")
    overridden = stored.decision.model_copy(
        update={"eligible": True, "review": "auto", "rules": [rule]}
    )
    late.step(DAY, status="awaiting_shipment", decision=overridden.model_dump(mode="json"))
    same = _run(engine, Policy())
    assert (same.cases, same.skipped, same.flips) == (9, {"child_case": 1, "overridden": 1}, 0)


def test_candidates_against_the_hand_computed_history(engine: Engine) -> None:  # noqa: F811
    migrate(engine)
    ids = seed(engine, start=JUNE)

    # The policy the history was decided under changes nothing: every prior-case count (P4's
    # and I's high risk) is the one the open counted.
    same = _run(engine, Policy())
    happened = same.overall.happened
    assert (same.cases, same.skipped, same.flips) == (9, {"child_case": 1}, 0)
    assert (happened.eligible, happened.rejected, happened.auto_approved) == (8, 1, 2)
    assert (happened.manual_review, happened.auto_approval_rate, happened.review_hours) == (
        6, 0.2222, 1.5,
    )  # fmt: skip
    assert (happened.returnless, happened.fast_refund, happened.high_risk) == (1, 3, 2)
    assert happened.refunds == {TWD: Decimal("1870.00")}
    assert happened.fees == {TWD: Decimal("80.00")}
    assert happened.store_credit == {TWD: Decimal("0.00")}
    assert same.overall.candidate == happened

    # The prior cases are the customer's of the 90 days before each case: P4 has P1, P2 and
    # P3; I has P2, P3 and P4 (P1 opened 100 days before it). At a threshold of 4 neither is
    # high risk any more; had P1 been counted for I, it would still be.
    lenient = _run(engine, Policy(returns=ReturnsPolicy(serial_returner_threshold=4)))
    unflagged = [("review", "manual", "auto"), ("high_risk", "yes", "no"),
                 ("fast_refund", "no", "yes")]  # fmt: skip
    assert {case: sorted(changes) for case, changes in _flips(lenient).items()} == {
        ids["P4"]: sorted(unflagged), ids["I"]: sorted(unflagged),
    }  # fmt: skip

    # (a) A 3-day window. A (5 days) and D (6 days) fall out; E (20) stays out; B (2), C (1),
    # P4 and I (2) stay in; F is a defect (15 days). A was paid as decided: its 1000 goes.
    a = _run(engine, STRICTER_WINDOW)
    cand, change = a.overall.candidate, a.overall.change
    assert (cand.eligible, cand.rejected, cand.auto_approved, cand.manual_review) == (6, 3, 1, 5)
    assert (cand.auto_approval_rate, cand.review_hours, cand.fast_refund) == (0.1111, 1.25, 2)
    assert cand.refunds == {TWD: Decimal("870.00")}  # B 720 + F 150
    assert (change.refunds, change.fees) == ({TWD: Decimal("-1000.00")}, {TWD: Decimal("0")})
    assert (change.rejected, change.auto_approved, change.manual_review) == (2, -1, -1)
    assert a.flips == 2
    assert _flips(a) == {
        ids["A"]: [("eligible", "yes", "no"), ("review", "auto", "none"),
                   ("fast_refund", "yes", "no"), ("shipping_payer", "customer", "none")],
        ids["D"]: [("eligible", "yes", "no"), ("review", "manual", "none"),
                   ("shipping_payer", "customer", "none")],
    }  # fmt: skip
    assert a.flip_counts == {
        "eligible: yes -> no": 2, "shipping_payer: customer -> none": 2,
        "fast_refund: yes -> no": 1, "review: auto -> none": 1, "review: manual -> none": 1,
    }  # fmt: skip
    flip_a = next(f for f in a.flips_listed if f.case_id == ids["A"])
    assert [r.id for r in flip_a.rules_before] == [
        "in_window", "customer_pays_shipping", "auto_approve", "fast_refund",
    ]  # fmt: skip
    assert [(r.id, r.message) for r in flip_a.rules_after] == [
        ("outside_return_window", "Delivered 5 days ago; returns are accepted for only 3 days.")
    ]
    # Newest first: D opened on day 4, A on day 1.
    assert [f.case_id for f in a.flips_listed] == [ids["D"], ids["A"]]
    # Per type: the returns lose A, the exchange D; per category both are apparel.
    returns = _row(a.by_type, "return")
    assert (returns.happened.cases, returns.flips, returns.change.refunds) == (
        7, 1, {TWD: Decimal("-1000.00")},
    )  # fmt: skip
    assert (_row(a.by_type, "exchange").candidate.rejected, _row(a.by_type, "complaint").flips) == (
        1, 0,
    )  # fmt: skip
    apparel = _row(a.by_category, "apparel")  # A, D, P4, I
    assert (apparel.happened.cases, apparel.candidate.rejected, apparel.flips) == (4, 2, 2)
    assert _row(a.by_reason, None).happened.cases == 1  # G, the complaint
    assert _row(a.by_reason, "changed_mind").flips == 1  # A (E, C, P4, I stay as they were)

    # (b) A 5000 auto-approve limit: C (4000) and D (3500) need no review any more; B is
    # opened, P4 and I are high risk: still manual. C is still running and D paid nothing, so
    # no money moves.
    b = _run(engine, HIGHER_AUTO_LIMIT)
    cand, change = b.overall.candidate, b.overall.change
    assert (cand.auto_approved, cand.manual_review, cand.auto_approval_rate) == (4, 4, 0.4444)
    assert (change.auto_approved, change.manual_review, change.review_hours) == (2, -2, -0.5)
    assert (change.refunds, change.fees, change.rejected) == (
        {TWD: Decimal("0")}, {TWD: Decimal("0")}, 0,
    )  # fmt: skip
    assert _flips(b) == {
        ids["C"]: [("review", "manual", "auto")],
        ids["D"]: [("review", "manual", "auto")],
    }
    assert b.flip_counts == {"review: manual -> auto": 2}
    assert _row(b.by_category, "electronics").candidate.auto_approved == 1
    assert _row(b.by_type, CaseType.EXCHANGE.value).change.manual_review == -1

    # (c) Underwear becomes non-returnable: B (an opened bra, size) is refused at open. It
    # was refunded 720 with an 80 fee as decided: both go. Nothing else holds underwear.
    c = _run(engine, NO_UNDERWEAR)
    cand, change = c.overall.candidate, c.overall.change
    assert (cand.eligible, cand.rejected, cand.manual_review, cand.fast_refund) == (7, 2, 5, 2)
    assert cand.refunds == {TWD: Decimal("1150.00")} and cand.fees == {TWD: Decimal("0.00")}
    assert (change.refunds, change.fees) == ({TWD: Decimal("-720.00")}, {TWD: Decimal("-80.00")})
    assert _flips(c) == {
        ids["B"]: [("eligible", "yes", "no"), ("review", "manual", "none"),
                   ("fast_refund", "yes", "no"), ("shipping_payer", "customer", "none")],
    }  # fmt: skip
    underwear = _row(c.by_category, "underwear")
    assert (underwear.happened.eligible, underwear.candidate.rejected, underwear.flips) == (1, 1, 1)
    assert underwear.change.fees == {TWD: Decimal("-80.00")}
    assert [r.id for r in c.flips_listed[0].rules_after] == [
        "in_window", "non_returnable_category",
    ]  # fmt: skip
    # The other categories see no change.
    assert all(row.flips == 0 for row in c.by_category if row.key != "underwear")

    # A period of the month's first week: A, B, C, D, P4 and E (days 1-6; F opened on June 8);
    # the flips are listed up to the number asked for, newest first.
    with engine.connect() as conn:
        week = datetime(2022, 6, 8, tzinfo=UTC)
        half = simulate_period(conn, STRICTER_WINDOW, start=JUNE, end=week, flips_listed=1)
    assert (half.cases, half.flips, [f.case_id for f in half.flips_listed]) == (6, 2, [ids["D"]])


# ---- over HTTP ----------------------------------------------------------------------------

# The seeded month, a period no other test opens cases in.
MAY_2021 = datetime(2021, 5, 1, tzinfo=UTC)
PERIOD = {"since": "2021-05-01", "until": "2021-05-31"}
NO_UNDERWEAR_TOML = (
    "[returns]\nnon_returnable_categories = ["
    + ", ".join(f'"{c}"' for c in [*DEFAULT_CATEGORIES, "underwear"])
    + "]\n"
)


@pytest.fixture(scope="module")
def seeded(api: Api) -> dict[str, str]:
    """The history in May 2021, written into the stack's database."""
    return seed(api.engine, start=MAY_2021)


async def _simulate(api: Api, body: dict[str, Any], who: str = "operator") -> httpx.Response:
    return await api.request("POST", "/v1/policy/simulate", who, json=body)


async def test_the_api_answers_the_candidates_figures(api: Api, seeded: dict[str, str]) -> None:
    policy = NO_UNDERWEAR.model_dump(mode="json", include={"returns"})
    response = await _simulate(api, {"policy": policy, **PERIOD, "minutes_per_review": 20})
    assert response.status_code == 200, response.text
    report = response.json()
    overall = report["overall"]
    assert (report["cases"], report["skipped"], report["flips"]) == (9, {"child_case": 1}, 1)
    # 6 manual reviews at 20 minutes: 2 h; under the candidate 5: 1.67 h.
    assert (overall["happened"]["review_hours"], overall["candidate"]["review_hours"]) == (2, 1.67)
    assert overall["change"]["refunds"] == {TWD: "-720.00"}
    assert overall["change"]["fees"] == {TWD: "-80.00"}
    assert [f["case_id"] for f in report["flips_listed"]] == [seeded["B"]]
    # The same figures as the store's own run of the same candidate and period.
    with api.engine.connect() as conn:
        direct = simulate_period(
            conn, NO_UNDERWEAR, start=MAY_2021, end=datetime(2021, 6, 1, tzinfo=UTC),
            minutes_per_review=20,
        )  # fmt: skip
    assert report == direct.model_dump(mode="json")

    schema = (await api.request("GET", "/openapi.json", None)).json()
    operation = schema["paths"]["/v1/policy/simulate"]["post"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/SimulationReport")
    assert "flips_listed" in schema["components"]["schemas"]["SimulationReport"]["properties"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"policy": {"returns": {"window_days": -1}}}, "policy.returns.window_days"),
        ({"policy": {"returns": {"windowdays": 3}}}, "policy.returns.windowdays"),
        ({"policy": {"timezone": "Mars/Olympus"}}, "policy.timezone"),
        ({"since": "ninety days"}, "since"),
        ({"since": "2021-06-01", "until": "2021-05-01"}, "since"),
        ({"since": "400d"}, "since"),
        ({"until": "tomorrow"}, "until"),
        ({"minutes_per_review": 0}, "minutes_per_review"),
        ({"flips": 5000}, "flips"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    assert_problem(await _simulate(api, body), 422, field=field, type_suffix="validation-error")


# ---- the console ---------------------------------------------------------------------------

_FIGURE = re.compile(r'data-figure="([^"]+)" data-value="([^"]*)"')


def _lookup(report: dict[str, Any], path: str) -> Any:
    """A figure of the API's report by the page's dotted name (groups by key, "none" for None)."""
    node: Any = report
    parts = path.split(".")
    if parts[0] in ("by_type", "by_reason", "by_category"):
        key = None if parts[1] == "none" else parts[1]
        node = next(row for row in report[parts[0]] if row["key"] == key)
        parts = parts[2:]
    elif parts[0] == "flip_counts":
        return report["flip_counts"][".".join(parts[1:])]
    for part in parts:
        node = node[part]
    return node


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_the_console_page_shows_the_apis_numbers_to_supervisors_only(
    api: Api, seeded: dict[str, str]
) -> None:
    api_report = (
        await _simulate(api, {"policy": STRICTER_WINDOW.model_dump(mode="json",
                        include={"returns"}), **PERIOD, "minutes_per_review": 15, "flips": 25})
    ).json()  # fmt: skip
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as browser:
        await sign_in(browser, add_agent(api, AgentRole.SUPERVISOR))
        reports = await browser.get("/console/reports")
        assert 'href="/console/reports/policy"' in reports.text
        form = await browser.get("/console/reports/policy")
        assert form.status_code == 200
        token = form_token(form.text)
        fields = {"since": PERIOD["since"], "until": PERIOD["until"], "minutes_per_review": "15"}
        page = await browser.post(
            "/console/reports/policy",
            data={"csrf_token": token, "candidate": "[returns]\nwindow_days = 3\n", **fields},
        )
        assert page.status_code == 200, page.text
        figures = _FIGURE.findall(page.text)
        # Every figure of the overall table (13 lines, 3 columns), 3 per group row and more.
        assert len(figures) > 100
        for name, shown in figures:
            name = html.unescape(name)  # a flip's change reads "review: auto -&gt; none"
            assert shown == str(_lookup(api_report, name)), name
        assert (
            f'data-flip="{seeded["A"]}"' in page.text and f'data-flip="{seeded["D"]}"' in page.text
        )
        assert "outside_return_window" in page.text

        # A bad candidate: the form again, naming the key; no CSRF token: refused.
        bad = await browser.post(
            "/console/reports/policy",
            data={"csrf_token": token, "candidate": "[returns]\nwindow_days = -2\n", **fields},
        )
        assert bad.status_code == 422 and "returns.window_days" in bad.text
        assert 'data-error="candidate"' in bad.text and "window_days = -2" in bad.text
        forged = await browser.post("/console/reports/policy", data={"candidate": "", **fields})
        assert forged.status_code == 403

    async with httpx.AsyncClient(base_url=api.url, timeout=30) as browser:
        await sign_in(browser, add_agent(api))  # an agent, not a supervisor
        assert (await browser.get("/console/reports/policy")).status_code == 403
        token = form_token((await browser.get("/console/reports")).text)
        posted = await browser.post(
            "/console/reports/policy", data={"csrf_token": token, "candidate": "", **PERIOD}
        )
        assert_problem(posted, 403, type_suffix="supervisor-only")
        assert 'href="/console/reports/policy"' not in (await browser.get("/console/reports")).text
