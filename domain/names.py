"""Names that cross a boundary, defined once: workflow handlers and types, timers, messages,
actors, timeline kinds, webhook events and action names.

Pure, so the API, the worker, the workflows (inside the sandbox) and the tests share them.
Each is a `StrEnum`: its members are the strings on the wire, in histories and in the DB.
"""

from __future__ import annotations

from enum import StrEnum

from domain.models import CaseStatus, CaseType


class Handler(StrEnum):
    """The message handlers every case workflow has."""

    STATE = "state"  # query: the case as the API shows it
    ACTION = "action"  # update: an agent action
    CUSTOMER_ACTION = "customer_action"  # update: a customer action
    EVENT = "event"  # signal: an integration event, deduplicated by event_id
    # signal: the outbox gave up on a storefront webhook event (a 4xx, or retries exhausted)
    WEBHOOK_FAILED = "webhook_failed"


class WorkflowName(StrEnum):
    """The workflow type of each case type (the name histories and the server know)."""

    RETURN = "ReturnWorkflow"
    EXCHANGE = "ExchangeWorkflow"
    REFUND = "RefundWorkflow"
    REPAIR = "RepairWorkflow"
    COMPLAINT = "ComplaintWorkflow"


WORKFLOW_NAMES: dict[CaseType, WorkflowName] = {
    CaseType.RETURN: WorkflowName.RETURN,
    CaseType.EXCHANGE: WorkflowName.EXCHANGE,
    CaseType.REFUND: WorkflowName.REFUND,
    CaseType.REPAIR: WorkflowName.REPAIR,
    CaseType.COMPLAINT: WorkflowName.COMPLAINT,
}


class ErrorType(StrEnum):
    """The `ApplicationError` types the workflows answer with."""

    # An update refused (validator) or given back unused: the API answers 409.
    ACTION_NOT_ALLOWED = "action_not_allowed"


class Timer(StrEnum):
    """Every named deadline; its duration comes from the policy's `timers`."""

    FIRST_RESPONSE = "first_response"
    FIRST_RESPONSE_HARD = "first_response_hard"
    REVIEW = "review"
    CUSTOMER_INFO = "customer_info"
    CUSTOMER_INFO_REMINDER = "customer_info_reminder"
    CUSTOMER_SHIPMENT = "customer_shipment"
    CUSTOMER_SHIPMENT_REMINDER = "customer_shipment_reminder"
    CARRIER_PICKUP = "carrier_pickup"
    TRANSIT = "transit"
    INSPECTION = "inspection"
    REFUND = "refund"
    REFUND_UNSHIPPED = "refund_unshipped"
    DISPATCH = "dispatch"
    DIAGNOSIS = "diagnosis"
    REPAIR = "repair"
    QUOTE_RESPONSE = "quote_response"
    OFFER_RESPONSE = "offer_response"
    INTERCEPTION = "interception"
    FOLLOW_UP = "follow_up"
    COMPLAINT_FOLLOW_UP = "complaint_follow_up"
    SURVEY = "survey"
    # How long a rejected return or exchange can still be approved as an exception.
    EXCEPTION_WINDOW = "exception_window"
    # How long a message that needs the customer's answer waits before an SMS nudges them.
    SMS_NUDGE = "sms_nudge"
    # How long a customer who waits for an out-of-stock replacement waits when the warehouse
    # names no restock date (with one, the usual `dispatch` time runs from that date).
    RESTOCK = "restock"
    # A negative review opened on a non-working day: answered within 2 hours of real time.
    NEGATIVE_REVIEW_RESPONSE = "negative_review_response"


class Message(StrEnum):
    """Every message a case sends (a template of that name per locale)."""

    CASE_RECEIVED = "case_received"
    CASE_REJECTED = "case_rejected"
    CASE_APPROVED = "case_approved"
    CASE_CANCELLED = "case_cancelled"
    CASE_EXPIRED = "case_expired"
    INFO_NEEDED = "info_needed"
    INFO_REMINDER = "info_reminder"
    SHIPMENT_REMINDER = "shipment_reminder"
    PICKED_UP = "picked_up"
    PICKUP_REBOOKED = "pickup_rebooked"
    ITEM_RECEIVED = "item_received"
    INSPECTION_PASSED = "inspection_passed"
    INSPECTION_FAILED = "inspection_failed"
    REFUND_SENT = "refund_sent"
    REFUND_OFFER = "refund_offer"
    # Store credit (or a complaint's coupon) issued: its amount, bonus and code.
    STORE_CREDIT_ISSUED = "store_credit_issued"
    OFFER_DECLINED = "offer_declined"
    FULFILMENT_CANCELLED = "fulfilment_cancelled"
    INTERCEPTION_REQUESTED = "interception_requested"
    INTERCEPTION_FAILED = "interception_failed"
    DIFFERENCE_DUE = "difference_due"
    OUT_OF_STOCK_OFFER = "out_of_stock_offer"
    # The customer chose to wait for an out-of-stock replacement, or another variant.
    WAITING_FOR_STOCK = "waiting_for_stock"
    VARIANT_SWITCHED = "variant_switched"
    REPLACEMENT_SHIPPED = "replacement_shipped"
    ORIGINAL_NOT_RETURNED = "original_not_returned"
    DIAGNOSIS_DELAYED = "diagnosis_delayed"
    REPAIR_QUOTE = "repair_quote"
    REPAIR_DECLINED = "repair_declined"
    REPAIR_STARTED = "repair_started"
    REPAIR_DONE = "repair_done"
    UNREPAIRABLE = "unrepairable"
    COMPLAINT_ACKNOWLEDGED = "complaint_acknowledged"
    COMPLAINT_RESPONSE = "complaint_response"
    RESOLUTION_PROPOSED = "resolution_proposed"
    RESOLUTION_DONE = "resolution_done"
    SATISFACTION_CHECK = "satisfaction_check"
    SURVEY = "survey"
    # A short SMS about a message still awaiting the customer's answer (`Timer.SMS_NUDGE`).
    SMS_NUDGE = "sms_nudge"
    # To the operations contacts, not the customer.
    OPS_ESCALATION = "ops_escalation"


class Actor(StrEnum):
    """Who a timeline entry says acted, when it isn't a named agent."""

    AGENT = "agent"
    CUSTOMER = "customer"
    SYSTEM = "system"
    POLICY = "policy"
    TIMER = "timer"
    STOREFRONT = "storefront"
    INTEGRATION = "integration"
    CARRIER = "carrier"
    WAREHOUSE = "warehouse"
    PAYMENT = "payment"
    # The customer's mail and SMS, and the operators' mail.
    MESSAGING = "messaging"


class Kind(StrEnum):
    """The kinds of timeline entries a case writes (events add their own type as the kind)."""

    OPENED = "opened"
    NOTE = "note"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    # A partner (payment, carrier, storefront, SMS, mail) refused or failed a side effect.
    CONNECTOR_FAILED = "connector_failed"
    RETRIED = "retried"
    # Statuses
    AWAITING_REVIEW = "awaiting_review"
    AWAITING_SHIPMENT = "awaiting_shipment"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    REFUND_PENDING = "refund_pending"
    REPAIRING = "repairing"
    REPLACEMENT_SHIPPED = "replacement_shipped"
    RESOLVED = "resolved"
    INFO_REQUESTED = "info_requested"
    INTERCEPTION_REQUESTED = "interception_requested"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    # Review and the customer
    APPROVED = "approved"
    # A supervisor approved a rejected case against the policy, or changed its terms.
    EXCEPTION_APPROVED = "exception_approved"
    TERMS_CHANGED = "terms_changed"
    CUSTOMER_REPLIED = "customer_replied"
    TRACKING_PROVIDED = "tracking_provided"
    RATED = "rated"
    SURVEY_EXPIRED = "survey_expired"
    SURVEY_SENT = "survey_sent"
    # Money
    REFUND_REQUESTED = "refund_requested"
    REFUND_SUCCEEDED = "refund_succeeded"
    FAST_REFUND = "fast_refund"
    OUT_OF_STOCK_REFUND = "out_of_stock_refund"
    DIFFERENCE_PAID = "difference_paid"
    COUPON_ISSUED = "coupon_issued"
    STORE_CREDIT_REQUESTED = "store_credit_requested"
    STORE_CREDIT_ISSUED = "store_credit_issued"
    # Parcels
    PICKUP_BOOKED = "pickup_booked"
    # A convenience-store drop-off code booked for the customer's parcel.
    DROPOFF_BOOKED = "dropoff_booked"
    SHIPMENT_BOOKED = "shipment_booked"
    PARCEL_DAMAGED = "parcel_damaged"
    DELIVERED = "delivered"
    INTERCEPTION_FAILED = "interception_failed"
    INSPECTION_PASSED = "inspection_passed"
    INSPECTION_FAILED = "inspection_failed"
    INSPECTION_RECORDED = "inspection_recorded"
    ADVANCED_EXCHANGE = "advanced_exchange"
    REPLACEMENT_OUT_OF_STOCK = "replacement_out_of_stock"
    WAITING_FOR_STOCK = "waiting_for_stock"
    VARIANT_SWITCHED = "variant_switched"
    # Offers
    OFFER_MADE = "offer_made"
    OFFER_ACCEPTED = "offer_accepted"
    OFFER_DECLINED = "offer_declined"
    # Repairs
    DIAGNOSIS_RECORDED = "diagnosis_recorded"
    QUOTE_ACCEPTED = "quote_accepted"
    QUOTE_DECLINED = "quote_declined"
    DIAGNOSIS_FEE_CHARGED = "diagnosis_fee_charged"
    DIAGNOSIS_FEE_WAIVED = "diagnosis_fee_waived"
    REPAIR_WARRANTY = "repair_warranty"
    UNREPAIRABLE = "unrepairable"
    RESOLUTION_CHOSEN = "resolution_chosen"
    # Complaints
    RESPONDED = "responded"
    APOLOGY_ACCEPTED = "apology_accepted"
    CHILD_CASE_OPENED = "child_case_opened"
    CHILD_CASE_RESOLVED = "child_case_resolved"
    SATISFACTION_CHECK = "satisfaction_check"
    SATISFIED = "satisfied"
    DISSATISFIED = "dissatisfied"
    MARKED_MALICIOUS = "marked_malicious"


class Webhook(StrEnum):
    """Storefront webhook events besides the status changes (`status_webhook`)."""

    ESCALATED = "case.escalated"
    CANCEL_FULFILMENT = "case.cancel_fulfilment"
    CHARGE_CUSTOMER = "case.charge_customer"
    COUPON_ISSUED = "case.coupon_issued"


def status_webhook(status: CaseStatus) -> str:
    """The storefront webhook event a move to `status` sends, e.g. `case.resolved`."""
    return f"case.{status.value}"


_STATUS_WEBHOOKS = {status_webhook(status): status.value for status in CaseStatus}


def status_of_webhook(event_type: str) -> str | None:
    """The status a status webhook event reports (`case.resolved` -> `resolved`); None for
    the other events."""
    return _STATUS_WEBHOOKS.get(event_type)


class AgentVerb(StrEnum):
    """The agent actions (`action` of an agent action body)."""

    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_INFO = "request_info"
    RESPOND = "respond"
    PROPOSE = "propose"
    RECORD_INSPECTION = "record_inspection"
    RECORD_DIAGNOSIS = "record_diagnosis"
    ASSIGN = "assign"
    ESCALATE = "escalate"
    MARK_MALICIOUS = "mark_malicious"
    NOTE = "note"
    CANCEL = "cancel"
    # Run a step that failed at a partner again (a refund, a pickup, a shipment, ...).
    RETRY = "retry"
    # A supervisor approves a return or exchange the policy (or an agent) rejected.
    APPROVE_EXCEPTION = "approve_exception"


# What only a supervisor's own account may do (docs/decisions.md, "Exceptions"): approve an
# exception, and change the terms (restocking fee, shipping payer) when approving.
SUPERVISOR_ACTIONS = frozenset({AgentVerb.APPROVE_EXCEPTION})
SUPERVISOR_TERMS = frozenset({"restocking_fee", "shipping_payer"})


# The actions that move a case on an agent's decision: a case taking one of them now waits
# on an agent (the console's queue). Notes, assignment, escalation and cancel never wait.
AGENT_DECISIONS = frozenset(
    {
        AgentVerb.APPROVE,
        AgentVerb.REJECT,
        AgentVerb.REQUEST_INFO,
        AgentVerb.RESPOND,
        AgentVerb.PROPOSE,
        AgentVerb.RECORD_INSPECTION,
        AgentVerb.RECORD_DIAGNOSIS,
        AgentVerb.RETRY,
    }
)


class CustomerVerb(StrEnum):
    """The customer actions (`action` of a customer action body)."""

    REPLY = "reply"
    PROVIDE_TRACKING = "provide_tracking"
    ACCEPT = "accept"
    DECLINE = "decline"
    RATE = "rate"
    CANCEL = "cancel"
    # An out-of-stock replacement swapped for a variant the warehouse offered.
    SWITCH_VARIANT = "switch_variant"


class AgentRole(StrEnum):
    """What an agent account may do: a supervisor does all an agent does, and reassigns."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"


# The first answer a case gives the customer after it opened, agent's or automatic: a decision
# (approved, rejected, more information asked) or an agent's reply or offer (a complaint).
# Reports time the first response to the first of these (docs/decisions.md, "Reports").
FIRST_RESPONSE_KINDS = frozenset(
    {Kind.APPROVED, Kind.REJECTED, Kind.INFO_REQUESTED, Kind.RESPONDED, Kind.OFFER_MADE}
)


class Outcome(StrEnum):
    """What a case gave the customer, as reports count it (docs/decisions.md, "Reports")."""

    EXCHANGE = "exchange"
    REFUND = "refund"
    # Store credit issued instead of a refund (a complaint's coupon is not counted here).
    STORE_CREDIT = "store_credit"
    REPAIR = "repair"
    # Refunded, and the item stayed with the customer (a returnless case).
    KEPT_ITEM = "kept_item"


class DeadlineOutcome(StrEnum):
    """How a listed deadline ended: cleared before its due time, or it came due."""

    MET = "met"
    BREACHED = "breached"
