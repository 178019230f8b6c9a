"""A repair (售後維修): the item comes in, is diagnosed, repaired and sent back (DESIGN 3.5).

Four stages: application (review), diagnosis, repair, return and acceptance. A repair under
warranty is free and the shop books the pickup; otherwise the customer ships and a repair that
costs something is quoted first. An item that can't be repaired is replaced or refunded, as an
agent chooses.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import (
        DiagnosisData,
        EventType,
        IntegrationEvent,
        Propose,
        RecordDiagnosis,
        RepairReportData,
    )
    from domain.models import (
        CaseStatus,
        CaseView,
        Deadline,
        Repair,
        RepairDiagnosis,
        RepairReport,
    )
    from domain.rules import add_months
    from workflows.case import Accepts, CaseInput
    from workflows.inbound import InboundCase
    from workflows.outbound import OutboundCase

# What an agent may choose for an item that can't be repaired (or that the carrier lost).
SETTLEMENTS = ("exchange", "refund")


@workflow.defn(name="RepairWorkflow")
class RepairWorkflow(InboundCase, OutboundCase):
    """Review, take the item in, diagnose, quote, repair, send it back, follow up."""

    # Set once the shop has the item: from then on a cancel would strand it.
    _holding_item = False

    @workflow.run
    async def run(self, input: CaseInput) -> CaseView:
        """Run the repair to its end."""
        self.view.repair = Repair()
        return await self.run_case(self.lifecycle)

    @property
    def record(self) -> Repair:
        """The case's repair record."""
        assert self.view.repair is not None
        return self.view.repair

    @property
    def cancellable(self) -> bool:
        """Before shipment only, also in `awaiting_customer` (a quote) or `awaiting_review`
        (an unrepairable item) once the shop has the item: a cancel then would strand it."""
        return super().cancellable and not self._holding_item

    async def lifecycle(self) -> None:
        """Every path of a repair, from open to the survey."""
        await self.notify("case_received")
        if not self.view.decision.eligible:
            await self.reject_ineligible()
        await self.review()
        received = await self.receive_item(inspect=False)
        self._holding_item = True
        if received.lost:
            # Escalated for a carrier claim already; the customer is still owed their item's worth.
            await self.settle(lost=True)
        else:
            diagnosis = await self.diagnose()
            if not diagnosis.repairable:
                await self.settle(lost=False)
            elif diagnosis.cost > 0 and not await self.quote(diagnosis):
                await self.send_back_unrepaired()
            else:
                await self.repair()
        await self.follow_up()

    # ---- diagnosis --------------------------------------------------------------

    async def diagnose(self) -> RepairDiagnosis:
        """Received → `inspecting` until diagnosed; a late one escalates and tells the customer."""
        results = Accepts(
            agent=frozenset({"record_diagnosis"}),
            events=frozenset({EventType.REPAIR_DIAGNOSED}),
        )
        await self.set_status(
            CaseStatus.INSPECTING,
            "received",
            "warehouse",
            "The repair centre has the item.",
            expect=results,
        )
        due_at = self.due("diagnosis")
        await self.notify("item_received", deadline=Deadline(name="diagnosis", due_at=due_at))
        found = await self.wait_until(results, "diagnosis", due_at)
        if found is None:
            await self.breach("diagnosis", due_at, "The diagnosis deadline passed.")
            await self.notify("diagnosis_delayed")
            found = await self.wait_overdue(results, "diagnosis", due_at)
        if isinstance(found, IntegrationEvent):
            data = found.parsed()
            assert isinstance(data, DiagnosisData)
        else:
            assert isinstance(found, RecordDiagnosis)
            data = DiagnosisData(
                repairable=found.repairable, parts=found.parts, cost=found.cost, notes=found.notes
            )
            # An event leaves its own timeline entry; an agent's diagnosis needs one too.
            self.add_timeline(
                "diagnosis_recorded",
                found.actor or "agent",
                "Diagnosis recorded.",
                data.model_dump(mode="json"),
            )
        # Shown and charged in the currency's minor units, e.g. "1500.00", never "1500".
        cost = data.cost.quantize(Decimal(1).scaleb(-self.policy.currency_minor_units))
        diagnosis = RepairDiagnosis(
            repairable=data.repairable, parts=data.parts, cost=cost, notes=data.notes
        )
        self.record.diagnosis = diagnosis
        return diagnosis

    # ---- quote --------------------------------------------------------------------

    async def quote(self, diagnosis: RepairDiagnosis) -> bool:
        """Quote a repair that costs something; True when the customer accepts it in time."""
        self.record.quote_status = "sent"
        answer = await self.offer(
            "repair_quote",
            timer="quote_response",
            amount=self.money(diagnosis.cost),
            parts=diagnosis.parts,
            notes=diagnosis.notes,
        )
        if answer is not None and getattr(answer, "action", None) == "accept":
            self.record.quote_status = "accepted"
            self.add_timeline(
                "quote_accepted",
                "customer",
                f"The customer accepted the quote of {self.view.order.currency} {diagnosis.cost}.",
            )
            # The storefront collects the repair fee, as it charges for an unreturned original.
            await self.publish(
                "case.charge_customer",
                {**self.money(diagnosis.cost), "reason": "repair_quote"},
            )
            return True
        # No answer counts as declined, but the record says the timer closed it.
        self.record.quote_status = "declined" if answer is not None else "expired"
        by = "customer" if answer is not None else "timer"
        message = (
            "The customer declined the quote."
            if answer is not None
            else "The quote went unanswered; the item goes back unrepaired."
        )
        # The repair centre's turn again: the item goes back, so the case leaves awaiting_customer.
        await self.set_status(CaseStatus.INSPECTING, "quote_declined", by, message)
        await self.notify("repair_declined")
        return False

    # ---- repair and return --------------------------------------------------------

    async def repair(self) -> None:
        """Free or accepted → `repairing` until the repair centre reports it done and QC passed."""
        completed = Accepts(events=frozenset({EventType.REPAIR_COMPLETED}))
        await self.set_status(CaseStatus.REPAIRING, "repairing", "system", expect=completed)
        due_at = self.due("repair")
        await self.notify("repair_started", deadline=Deadline(name="repair", due_at=due_at))
        while True:
            found = await self.wait_escalating(completed, "repair", due_at)
            assert isinstance(found, IntegrationEvent)
            data = found.parsed()
            assert isinstance(data, RepairReportData)
            self.record.report = RepairReport(
                parts_replaced=data.parts_replaced,
                work_done=data.work_done,
                qc_passed=data.qc_passed,
            )
            if data.qc_passed:
                break
            # A repair that fails its own quality check isn't sent out: the centre works on,
            # still owing it by the same deadline.
            self.set_deadline("repair", due_at)
            await self.escalate(
                reason="The repaired item failed quality control; the repair goes on.",
                actor="warehouse",
            )
        # The outcome is set before the item goes out: the shipping notice words it.
        self.record.outcome = "repaired"
        await self.dispatch_own_item("return_repaired")
        await self.await_delivery()
        months = self.policy.repairs.warranty_months
        if months > 0:
            today = workflow.now().astimezone(self.calendar.zone).date()
            self.record.warranty_until = add_months(today, months)
            self.add_timeline(
                "repair_warranty",
                "policy",
                f"The repair is under warranty until {self.record.warranty_until}.",
                {"warranty_until": self.record.warranty_until.isoformat()},
            )
        await self.notify("repair_done")

    async def send_back_unrepaired(self) -> None:
        """Quote declined or unanswered: the item goes back as it came."""
        self.record.outcome = "returned_unrepaired"
        await self.dispatch_own_item("return_unrepaired")
        await self.await_delivery()

    async def dispatch_own_item(self, step: str) -> None:
        """Ship the customer's own item back; the warehouse confirms with `replacement.shipped`."""
        attempt = 1
        while await self.dispatch(self.view.items, step=f"{step}.{attempt}") is None:
            # "Out of stock" can't be true of the customer's own item: someone must find it.
            await self.escalate(
                reason="The warehouse reported the customer's own item unavailable; find it.",
                actor="warehouse",
            )
            attempt += 1

    # ---- unrepairable -------------------------------------------------------------

    async def settle(self, *, lost: bool) -> None:
        """An item that can't be repaired (or was lost on its way in): an agent chooses a
        replacement or a refund, and the case carries it out."""
        proposals = Accepts(agent=frozenset({"propose"}))
        notes = "" if lost else (self.record.diagnosis.notes if self.record.diagnosis else "")
        await self.set_status(
            CaseStatus.AWAITING_REVIEW,
            "unrepairable",
            "carrier" if lost else "warehouse",
            "Lost on its way in: replace or refund." if lost else "The item can't be repaired.",
            expect=proposals,
        )
        # One deadline for the agent's choice: a refused proposal must not restart it.
        due_at = self.due("review")
        await self.notify(
            "unrepairable", deadline=Deadline(name="review", due_at=due_at), notes=notes, lost=lost
        )
        total = sum((item.total for item in self.view.items), Decimal(0))
        attempt = 0
        while True:
            proposal = await self.wait_escalating(proposals, "review", due_at)
            assert isinstance(proposal, Propose)
            if proposal.resolution not in SETTLEMENTS:
                self.refuse_last(
                    "An item that can't be repaired is replaced (exchange) or refunded (refund)."
                )
                continue
            actor = proposal.actor or "agent"
            if proposal.resolution == "refund":
                self.add_timeline(
                    "resolution_chosen",
                    actor,
                    proposal.message or f"Refund {self.view.order.currency} {total}.",
                    {"resolution": "refund"},
                )
                self.record.outcome = "refunded"
                await self.refund_now(total, reason="unrepairable")
                return
            # The warehouse's turn: out of the agents' queue while the replacement is prepared.
            await self.set_status(
                CaseStatus.INSPECTING,
                "resolution_chosen",
                actor,
                proposal.message or "Replace the item.",
            )
            attempt += 1
            self.record.outcome = "replaced"
            if await self.dispatch(self.view.items, step=f"replacement.{attempt}") is not None:
                await self.await_delivery()
                return
            self.record.outcome = None
            # Out of stock: back to the agent, who may refund instead, under the same deadline.
            await self.set_status(
                CaseStatus.AWAITING_REVIEW,
                "replacement_out_of_stock",
                "warehouse",
                "No replacement in stock: replace later or refund.",
                expect=proposals,
            )
            await self.escalate(
                reason="No replacement in stock for an unrepairable item; choose again.",
                actor="warehouse",
            )
