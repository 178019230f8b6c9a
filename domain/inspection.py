"""What a return's inspection pays back, line by line (issue 11, multi-line cases).

Pure: the workflow settles an inspection with it, and the API checks an inspection's lines
against the case with it before the event reaches the workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.actions import InspectionData
from domain.models import CaseView, Item


@dataclass(frozen=True)
class LineOutcome:
    """One line as its inspection left it."""

    sku: str
    passed: bool
    # What the line pays back: its refund when it passed, the inspector's amount (at most
    # that) when it failed.
    refund: Decimal
    keep_item: bool
    notes: str


@dataclass(frozen=True)
class Settlement:
    """An inspection line by line: what each line and the case pay back."""

    lines: list[LineOutcome]

    @property
    def amount(self) -> Decimal:
        """What the case pays back in all."""
        return sum((line.refund for line in self.lines), Decimal(0))

    @property
    def passed(self) -> bool:
        """Whether every line passed."""
        return all(line.passed for line in self.lines)

    def sent_back(self, items: list[Item]) -> list[Item]:
        """The failed lines the shop doesn't keep: they go back to the customer."""
        back = {line.sku for line in self.lines if not line.passed and not line.keep_item}
        return [item for item in items if item.sku in back]


def mismatch(case: CaseView, inspection: InspectionData) -> str | None:
    """Why an inspection's lines don't fit the case (None when they do, or it has none).

    A return settles each line it took back, so its lines must name each of them once; other
    cases read only the lines' overall result, so their lines must be the case's items.
    """
    if not inspection.lines:
        return None
    named = {line.sku for line in inspection.lines}
    returned = {item.sku for item in case.returned_items}
    unknown = sorted(named - returned)
    if unknown:
        return f"not lines this case takes back: {', '.join(unknown)}"
    missing = sorted(returned - named)
    if missing and case.decision.lines:
        return f"every line taken back needs a result: {', '.join(missing)} missing"
    return None


def settle(case: CaseView, inspection: InspectionData) -> Settlement:
    """Each line's outcome; call only when `mismatch` found nothing and the case has lines."""
    results = {line.sku: line for line in inspection.lines}
    outcomes: list[LineOutcome] = []
    for terms in case.decision.lines:
        found = results.get(terms.sku)
        if not terms.eligible or found is None:
            continue
        passed = found.result == "pass"
        due = terms.refund.amount
        outcomes.append(
            LineOutcome(
                sku=terms.sku,
                passed=passed,
                refund=due if passed else min(found.refund_amount or Decimal(0), due),
                keep_item=found.keep_item,
                notes=found.notes,
            )
        )
    return Settlement(lines=outcomes)
