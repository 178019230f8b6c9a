"""How an item comes back to the shop: a carrier pickup, the customer's own parcel, or a
convenience-store drop-off (issue 11, "Ways to send the item back"; docs/policy.md).

Who pays return shipping (rule 4) narrows the ways: the shop pays for a pickup, the customer
for their own parcel, and a drop-off suits either (its code is booked on the shop's carrier
account; the counter collects the postage when the customer pays). Within what the policy
offers for the payer, the customer's choice wins; without one, the payer's first way (today's:
pickup for the shop, the customer's own parcel otherwise). Pure, like the rules.
"""

from __future__ import annotations

from typing import Any, Literal

from domain.models import CaseRequest, CaseType, ReturnMethod, RuleHit
from domain.policy import Policy

Payer = Literal["seller", "customer"]

# The rule a drop-off adds to the decision.
DROPOFF_RULE = "dropoff_return"
# The case types whose customer chooses how the item comes back.
CHOOSING_TYPES = frozenset({CaseType.RETURN, CaseType.EXCHANGE})
# Each payer's ways, in the order a case without a choice takes them.
WAYS: dict[Payer, tuple[ReturnMethod, ...]] = {
    "seller": (ReturnMethod.PICKUP, ReturnMethod.DROPOFF),
    "customer": (ReturnMethod.SHIP, ReturnMethod.DROPOFF),
}


def offered(policy: Policy, payer: Payer) -> list[ReturnMethod]:
    """The ways the policy offers an item whose return shipping `payer` pays for."""
    return [way for way in WAYS[payer] if way in policy.returns.return_methods]


def default_for(payer: Payer) -> ReturnMethod:
    """The way of a case decided with no method (before there was a choice): today's."""
    return WAYS[payer][0]


def method_for(method: ReturnMethod | None, payer: Payer) -> ReturnMethod:
    """The way an item comes back under `payer`: `method` when that payer can take it (a
    decision's, possibly from before a supervisor changed the payer), else the payer's own."""
    if method is not None and method in WAYS[payer]:
        return method
    return default_for(payer)


def chain_named(policy: Policy, name: str | None) -> str | None:
    """The policy's spelling of a store chain (ignoring case), or None when it offers none
    by that name."""
    if name is None:
        return None
    wanted = name.strip().casefold()
    return next(
        (chain for chain in policy.returns.dropoff_chains if chain.casefold() == wanted), None
    )


def choose(
    request: CaseRequest, policy: Policy, payer: Payer
) -> tuple[ReturnMethod, str | None, RuleHit | None]:
    """The way the item comes back, the drop-off's chain (None for other ways) and the rule
    saying so (a drop-off only: the other ways are the shipping rule's own words).

    A choice the policy doesn't offer falls back to the payer's first way: the API refuses
    such a request before it opens (`problems`), so only a policy changed since (a simulation
    of a stored request, say) lands here.
    """
    ways = offered(policy, payer)
    method = request.return_method if request.return_method in ways else ways[0]
    if method is not ReturnMethod.DROPOFF:
        return method, None, None
    chain = chain_named(policy, request.dropoff_chain) or policy.returns.dropoff_chains[0]
    hit = RuleHit(
        id=DROPOFF_RULE,
        message=(
            f"The parcel goes back through a {chain} store: the shop books a drop-off code "
            "for the customer to show at the counter."
        ),
    )
    return method, chain, hit


def problems(request: CaseRequest, policy: Policy) -> list[dict[str, Any]]:
    """Why the request's `return_method` / `dropoff_chain` can't be taken, as the API's field
    errors (`field`, `message`, `type`); empty when they can."""
    method, chain = request.return_method, request.dropoff_chain
    if method is None and chain is None:
        return []
    if request.type not in CHOOSING_TYPES:
        field = "return_method" if method is not None else "dropoff_chain"
        return [_error(field, "only a return or an exchange chooses how the item comes back")]
    errors: list[dict[str, Any]] = []
    if method is not None:
        allowed = policy.returns.return_methods
        payer: Payer = "seller" if request.seller_fault else "customer"
        if method not in allowed:
            listed = ", ".join(way.value for way in allowed)
            message = f"{method.value} is not offered; choose {listed}"
            errors.append(_error("return_method", message))
        elif method not in WAYS[payer]:
            ways = " or ".join(way.value for way in offered(policy, payer))
            who = "the shop pays" if payer == "seller" else "you pay"
            message = f"{method.value} doesn't fit this reason ({who} return shipping)"
            errors.append(_error("return_method", f"{message}; choose {ways}"))
    if chain is not None:
        if method is not ReturnMethod.DROPOFF:
            errors.append(_error("dropoff_chain", "only a dropoff return_method names a chain"))
        elif chain_named(policy, chain) is None:
            chains = ", ".join(policy.returns.dropoff_chains)
            errors.append(_error("dropoff_chain", f"{chain!r} is not offered; choose {chains}"))
    return errors


def _error(field: str, message: str) -> dict[str, Any]:
    return {"field": field, "message": message, "type": "value_error"}
