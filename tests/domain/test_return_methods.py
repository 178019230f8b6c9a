"""How the item comes back: the policy's ways, the customer's choice, who pays (issue 11)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.models import CaseRequest
from domain.policy import Policy, PolicyError, load_policy
from domain.return_methods import problems
from domain.rules import adjusted, evaluate, excepted
from tests.support.factory import request_body

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
ALL = Policy.model_validate({"returns": {"return_methods": ["pickup", "ship", "dropoff"]}})
STORES_ONLY = Policy.model_validate(
    {"returns": {"return_methods": ["dropoff"], "dropoff_chains": ["FamilyMart"]}}
)


def request(**overrides: Any) -> CaseRequest:
    return CaseRequest.model_validate(request_body(now=NOW, **overrides))


def way(policy: Policy, **overrides: Any) -> tuple[Any, ...]:
    decision = evaluate(request(**overrides), policy=policy, now=NOW, prior_cases=0)
    return decision.shipping_payer, decision.return_method, decision.dropoff_chain


def test_without_a_choice_each_payer_travels_today_s_way() -> None:
    assert way(Policy()) == ("customer", "ship", None)
    assert way(Policy(), reason="defective", evidence=["x"]) == ("seller", "pickup", None)
    # A shop that takes returns only at stores: both payers drop off, at its one chain.
    assert way(STORES_ONLY) == ("customer", "dropoff", "FamilyMart")
    assert way(STORES_ONLY, reason="defective") == ("seller", "dropoff", "FamilyMart")
    # Returnless: nothing comes back, so no way either.
    cheap = [{"sku": "MUG", "category": "kitchen", "unit_price": "100.00"}]
    assert way(Policy(), reason="defective", evidence=["x"], items=cheap) == (None, None, None)


def test_the_customer_s_drop_off_and_its_rule() -> None:
    decision = evaluate(
        request(return_method="dropoff", dropoff_chain=" familymart "),
        policy=ALL,
        now=NOW,
        prior_cases=0,
    )
    assert (decision.return_method, decision.dropoff_chain) == ("dropoff", "FamilyMart")
    assert [rule.id for rule in decision.rules] == [
        "in_window",
        "customer_pays_shipping",
        "dropoff_return",
        "auto_approve",
        "fast_refund",
    ]
    seller = evaluate(
        request(return_method="dropoff", reason="defective", evidence=["x"]),
        policy=ALL,
        now=NOW,
        prior_cases=0,
    )
    assert seller.dropoff_chain == "7-ELEVEN"
    assert seller.rules[1].message.endswith("and books the drop-off.")
    # A stored request re-decided under a policy without drop-offs takes the default way.
    assert way(Policy(), return_method="dropoff") == ("customer", "ship", None)


@pytest.mark.parametrize(
    ("overrides", "policy", "errors"),
    [
        ({"return_method": "dropoff"}, Policy(), {"return_method": "dropoff is not offered"}),
        ({"return_method": "pickup"}, ALL, {"return_method": "pickup doesn't fit"}),
        ({"return_method": "ship", "reason": "defective"}, ALL, {"return_method": "ship doesn't"}),
        ({"dropoff_chain": "7-ELEVEN"}, ALL, {"dropoff_chain": "only a dropoff"}),
        (
            {"return_method": "dropoff", "dropoff_chain": "Lawson"},
            ALL,
            {"dropoff_chain": "'Lawson' is not offered; choose 7-ELEVEN, FamilyMart"},
        ),
        ({"type": "repair", "return_method": "ship"}, ALL, {"return_method": "only a return"}),
        ({"return_method": "dropoff", "dropoff_chain": "7-eleven"}, ALL, {}),
        ({"type": "exchange", "return_method": "ship"}, Policy(), {}),
    ],
)
def test_problems_name_the_field(
    overrides: dict[str, Any], policy: Policy, errors: dict[str, str]
) -> None:
    found = {e["field"]: e["message"] for e in problems(request(**overrides), policy)}
    assert set(found) == set(errors)
    for field, start in errors.items():
        assert found[field].startswith(start), found


def test_a_supervisor_s_terms_carry_the_way_along() -> None:
    ship = evaluate(request(), policy=ALL, now=NOW, prior_cases=0)
    changed = adjusted(ship, request(), policy=ALL, fee=None, payer="seller", by="sup")
    assert (changed.shipping_payer, changed.return_method) == ("seller", "pickup")
    store = evaluate(request(return_method="dropoff"), policy=ALL, now=NOW, prior_cases=0)
    kept = adjusted(store, request(), policy=ALL, fee=Decimal(0), payer="seller", by="sup")
    assert (kept.shipping_payer, kept.return_method, kept.dropoff_chain) == (
        "seller",
        "dropoff",
        "7-ELEVEN",
    )
    late = request(return_method="dropoff", order={"delivered_at": "2026-10-01T10:00:00+08:00"})
    exception = excepted(late, policy=ALL, opened_at=NOW, by="sup", reason="Loyal customer")
    assert exception.return_method == "dropoff"
    assert "dropoff_return" in [rule.id for rule in exception.rules]


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ('return_methods = ["pickup"]', "returns.return_methods: Value error, offer ship or"),
        ('return_methods = ["ship"]', "returns.return_methods: Value error, offer pickup or"),
        ('return_methods = ["dropoff"]\ndropoff_chains = []', "dropoff_chains: name at least"),
        ('return_methods = ["boat"]', "returns.return_methods.0: Input should be"),
    ],
)
def test_a_policy_without_a_way_for_a_payer_fails_at_start_up(
    tmp_path: Path, toml: str, said: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(f"[returns]\n{toml}\n")
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert said in str(raised.value)
