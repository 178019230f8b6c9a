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
        Accept,
        DiagnosisData,
        EventType,
        IntegrationEvent,
        Propose,
        RecordDiagnosis,
        RepairReportData,
    )
    from domain.models import (
        CaseOutcome,
        CaseStatus,
        Deadline,
        Repair,
        RepairDiagnosis,
        RepairReport,
    )
    from domain.money import round_money
    from domain.names import Actor, AgentVerb, Kind, Message, Timer, Webhook, WorkflowName
    from domain.rules import add_months
    from workflows.case import CaseHandlers, CaseInput
    from workflows.inbox import Accepts
    from workflows.steps.follow_up import follow_up
    from workflows.steps.inbound import receive_item
    from workflows.steps.offer import offer
    from workflows.steps.outbound import await_delivery, dispatch
    from workflows.steps.refund import refund_now
    from workflows.steps.review import reject_ineligible, review

# What an agent may choose for an item that can't be repaired (or that the carrier lost).
SETTLEMENTS = ("exchange", "refund")
DIAGNOSES = Accepts(
    agent=frozenset({AgentVerb.RECORD_DIAGNOSIS}),
    events=frozenset({EventType.REPAIR_DIAGNOSED}),
)
COMPLETED = frozenset({EventType.REPAIR_COMPLETED})
PROPOSALS = Accepts(agent=frozenset({AgentVerb.PROPOSE}))


@workflow.defn(name=WorkflowName.REPAIR.value)
class RepairWorkflow(CaseHandlers):
    """Review, take the item in, diagnose, quote, repair, send it back, follow up."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseOutcome:
        """Run the repair to its end."""
        # The first view carries an empty record already (domain.opening.initial_view).
        self.record = self.case.view.repair or Repair()
        self.case.view.repair = self.record
        return await self.case.run(self.lifecycle)

    async def lifecycle(self) -> None:
        """Every path of a repair, from open to the survey."""
        case = self.case
        await case.recorder.notify(Message.CASE_RECEIVED)
        if not case.view.decision.eligible:
            # Ends the case: only returns and exchanges wait for a supervisor's exception.
            await reject_ineligible(case)
        await review(case)
        received = await receive_item(case, inspect=False)
        # The shop has the item: from now on a cancel would strand it.
        case.locked = True
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
        await follow_up(case)

    # ---- diagnosis --------------------------------------------------------------

    async def diagnose(self) -> RepairDiagnosis:
        """Received → `inspecting` until diagnosed; a late one escalates and tells the customer."""
        case, rec, deadlines = self.case, self.case.recorder, self.case.deadlines
        await rec.set_status(
            CaseStatus.INSPECTING,
            Kind.RECEIVED,
            Actor.WAREHOUSE,
            "The repair centre has the item.",
            expect=DIAGNOSES,
        )
        due_at = deadlines.due(Timer.DIAGNOSIS)
        await rec.notify(
            Message.ITEM_RECEIVED, deadline=Deadline(name=Timer.DIAGNOSIS, due_at=due_at)
        )
        found = await deadlines.wait_until(DIAGNOSES, Timer.DIAGNOSIS, due_at)
        if found is None:
            await deadlines.breach(Timer.DIAGNOSIS, due_at, "The diagnosis deadline passed.")
            await rec.notify(Message.DIAGNOSIS_DELAYED)
            found = await deadlines.wait_overdue(DIAGNOSES, Timer.DIAGNOSIS, due_at)
        while True:
            match found:
                case IntegrationEvent():
                    data = found.data_as(DiagnosisData)
                    break
                case RecordDiagnosis():
                    data = DiagnosisData(
                        repairable=found.repairable,
                        parts=found.parts,
                        cost=found.cost,
                        notes=found.notes,
                        waive_diagnosis_fee=found.waive_diagnosis_fee,
                    )
                    # An event leaves its own timeline entry; an agent's diagnosis needs one too.
                    rec.add(
                        Kind.DIAGNOSIS_RECORDED,
                        found.actor or Actor.AGENT,
                        "Diagnosis recorded.",
                        data.model_dump(mode="json"),
                    )
                    break
                case _:
                    case.inbox.refuse_last("Only a diagnosis is taken here.")
                    found = await deadlines.wait_any(DIAGNOSES)
        # Shown and charged in the currency's minor units, e.g. "1500.00", never "1500".
        units = case.policy.currency_minor_units
        cost = round_money(data.cost, units)
        # Never more than the repair itself would have cost: the fee pays for the diagnosis.
        fee = round_money(min(case.policy.repairs.diagnosis_fee, cost), units)
        waived = data.waive_diagnosis_fee and fee > 0
        diagnosis = RepairDiagnosis(
            repairable=data.repairable,
            parts=data.parts,
            cost=cost,
            notes=data.notes,
            diagnosis_fee=Decimal(0) if waived else fee,
            diagnosis_fee_waived=waived,
        )
        self.record.diagnosis = diagnosis
        return diagnosis

    # ---- quote --------------------------------------------------------------------

    async def quote(self, diagnosis: RepairDiagnosis) -> bool:
        """Quote a repair that costs something; True when the customer accepts it in time."""
        case, rec = self.case, self.case.recorder
        self.record.quote_status = "sent"
        answer = await offer(
            case,
            Message.REPAIR_QUOTE,
            timer=Timer.QUOTE_RESPONSE,
            amount=rec.money(diagnosis.cost),
            parts=diagnosis.parts,
            notes=diagnosis.notes,
        )
        if isinstance(answer, Accept):
            self.record.quote_status = "accepted"
            rec.add(
                Kind.QUOTE_ACCEPTED,
                Actor.CUSTOMER,
                f"The customer accepted the quote of {case.view.order.currency} {diagnosis.cost}.",
            )
            # The storefront collects the repair fee, as it charges for an unreturned original.
            await rec.publish(
                Webhook.CHARGE_CUSTOMER,
                {**rec.money(diagnosis.cost).model_dump(mode="json"), "reason": "repair_quote"},
            )
            return True
        # No answer counts as declined, but the record says the timer closed it.
        self.record.quote_status = "declined" if answer is not None else "expired"
        by = Actor.CUSTOMER if answer is not None else Actor.TIMER
        message = (
            "The customer declined the quote."
            if answer is not None
            else "The quote went unanswered; the item goes back unrepaired."
        )
        # The repair centre's turn again: the item goes back, so the case leaves awaiting_customer.
        await rec.set_status(CaseStatus.INSPECTING, Kind.QUOTE_DECLINED, by, message)
        fee = await self.charge_diagnosis_fee(diagnosis)
        await rec.notify(Message.REPAIR_DECLINED, amount=rec.money(fee) if fee else None)
        return False

    async def charge_diagnosis_fee(self, diagnosis: RepairDiagnosis) -> Decimal:
        """Charge a declined (or lapsed) quote's diagnosis fee, or note it waived; the fee.

        The storefront collects it (`case.charge_customer`), as it collects an accepted quote:
        it holds the customer's payment method, the payment connector only refunds.
        """
        rec, currency = self.case.recorder, self.case.view.order.currency
        if diagnosis.diagnosis_fee_waived:
            rec.add(Kind.DIAGNOSIS_FEE_WAIVED, Actor.AGENT, "The diagnosis fee is waived.")
            return Decimal(0)
        fee = diagnosis.diagnosis_fee
        if fee <= 0:
            # No fee in the case's policy: nothing new happens (cases opened before the fee).
            return fee
        rec.add(
            Kind.DIAGNOSIS_FEE_CHARGED,
            Actor.POLICY,
            f"Diagnosis fee of {currency} {fee} charged for the declined quote.",
            {"amount": str(fee), "currency": currency},
        )
        await rec.publish(
            Webhook.CHARGE_CUSTOMER,
            {**rec.money(fee).model_dump(mode="json"), "reason": "diagnosis_fee"},
        )
        return fee

    # ---- repair and return --------------------------------------------------------

    async def repair(self) -> None:
        """Free or accepted → `repairing` until the repair centre reports it done and QC passed."""
        case, rec, deadlines = self.case, self.case.recorder, self.case.deadlines
        await rec.set_status(
            CaseStatus.REPAIRING,
            Kind.REPAIRING,
            Actor.SYSTEM,
            expect=Accepts(events=COMPLETED),
        )
        due_at = deadlines.due(Timer.REPAIR)
        await rec.notify(
            Message.REPAIR_STARTED, deadline=Deadline(name=Timer.REPAIR, due_at=due_at)
        )
        while True:
            found = await deadlines.event(COMPLETED, Timer.REPAIR, due_at)
            data = found.data_as(RepairReportData)
            self.record.report = RepairReport(
                parts_replaced=data.parts_replaced,
                work_done=data.work_done,
                qc_passed=data.qc_passed,
            )
            if data.qc_passed:
                break
            # A repair that fails its own quality check isn't sent out: the centre works on,
            # still owing it by the same deadline.
            deadlines.set(Timer.REPAIR, due_at)
            await rec.escalate(
                reason="The repaired item failed quality control; the repair goes on.",
                actor=Actor.WAREHOUSE,
            )
        # The outcome is set before the item goes out: the shipping notice words it.
        self.record.outcome = "repaired"
        await self.dispatch_own_item("return_repaired")
        await await_delivery(case)
        months = case.policy.repairs.warranty_months
        if months > 0:
            today = case.now().astimezone(case.calendar.zone).date()
            until = add_months(today, months)
            self.record.warranty_until = until
            rec.add(
                Kind.REPAIR_WARRANTY,
                Actor.POLICY,
                f"The repair is under warranty until {until}.",
                {"warranty_until": until.isoformat()},
            )
        await rec.notify(Message.REPAIR_DONE)

    async def send_back_unrepaired(self) -> None:
        """Quote declined or unanswered: the item goes back as it came."""
        self.record.outcome = "returned_unrepaired"
        await self.dispatch_own_item("return_unrepaired")
        await await_delivery(self.case)

    async def dispatch_own_item(self, step: str) -> None:
        """Ship the customer's own item back; the warehouse confirms with `replacement.shipped`."""
        attempt = 1
        while await dispatch(self.case, self.case.view.items, step=f"{step}.{attempt}") is None:
            # "Out of stock" can't be true of the customer's own item: someone must find it.
            await self.case.recorder.escalate(
                reason="The warehouse reported the customer's own item unavailable; find it.",
                actor=Actor.WAREHOUSE,
            )
            attempt += 1

    # ---- unrepairable -------------------------------------------------------------

    async def settle(self, *, lost: bool) -> None:
        """An item that can't be repaired (or was lost on its way in): an agent chooses a
        replacement or a refund, and the case carries it out."""
        case, rec, deadlines = self.case, self.case.recorder, self.case.deadlines
        diagnosis = self.record.diagnosis
        notes = "" if lost or diagnosis is None else diagnosis.notes
        await rec.set_status(
            CaseStatus.AWAITING_REVIEW,
            Kind.UNREPAIRABLE,
            Actor.CARRIER if lost else Actor.WAREHOUSE,
            "Lost on its way in: replace or refund." if lost else "The item can't be repaired.",
            expect=PROPOSALS,
        )
        # One deadline for the agent's choice: a refused proposal must not restart it.
        due_at = deadlines.due(Timer.REVIEW)
        await rec.notify(
            Message.UNREPAIRABLE,
            deadline=Deadline(name=Timer.REVIEW, due_at=due_at),
            notes=notes,
            lost=lost,
        )
        total = sum((item.total for item in case.view.items), Decimal(0))
        attempt = 0
        while True:
            proposal = await deadlines.escalating(Propose, PROPOSALS, Timer.REVIEW, due_at)
            if proposal.resolution not in SETTLEMENTS:
                case.inbox.refuse_last(
                    "An item that can't be repaired is replaced (exchange) or refunded (refund)."
                )
                continue
            actor = proposal.actor or Actor.AGENT
            if proposal.resolution == "refund":
                rec.add(
                    Kind.RESOLUTION_CHOSEN,
                    actor,
                    proposal.message or f"Refund {case.view.order.currency} {total}.",
                    {"resolution": "refund"},
                )
                self.record.outcome = "refunded"
                await refund_now(case, total, reason="unrepairable")
                return
            # The warehouse's turn: out of the agents' queue while the replacement is prepared.
            await rec.set_status(
                CaseStatus.INSPECTING,
                Kind.RESOLUTION_CHOSEN,
                actor,
                proposal.message or "Replace the item.",
            )
            attempt += 1
            self.record.outcome = "replaced"
            if await dispatch(case, case.view.items, step=f"replacement.{attempt}") is not None:
                await await_delivery(case)
                return
            self.record.outcome = None
            # Out of stock: back to the agent, who may refund instead, under the same deadline.
            await rec.set_status(
                CaseStatus.AWAITING_REVIEW,
                Kind.REPLACEMENT_OUT_OF_STOCK,
                Actor.WAREHOUSE,
                "No replacement in stock: replace later or refund.",
                expect=PROPOSALS,
            )
            await rec.escalate(
                reason="No replacement in stock for an unrepairable item; choose again.",
                actor=Actor.WAREHOUSE,
            )
