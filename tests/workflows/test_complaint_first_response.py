"""A complaint is acknowledged at once and answered under two clocks (DESIGN 3.6 step 1, 4)."""

from __future__ import annotations

from datetime import time, timedelta

from domain.calendar import BusinessCalendar
from domain.models import Deadline
from domain.policy import Policy
from tests.conftest import Stack
from tests.workflows.complaints import SEAM, complaint_input, open_complaint, skip_to_business_day
from tests.workflows.helpers import (
    act,
    deadline,
    deadline_names,
    entry,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    near,
    ops_mails,
    ops_mails_arrive,
    reach_deadline,
    reach_kind,
    reach_overdue,
    state,
    stop,
    webhooks_arrive,
)

FRIDAY, MONDAY = 4, 0


async def test_acknowledged_at_once_routed_and_prioritised(stack: Stack) -> None:
    case, handle = await open_complaint(stack, complaint={"severity": "high"})
    view = await state(handle)
    assert view.type == "complaint" and view.id.startswith("C-")
    assert view.queue == "quality"  # product_quality, by [complaints.routing]
    assert view.priority == "high"  # severity high
    assert deadline_names(view) == {"first_response", "first_response_hard"}
    opened = entry(view, "opened").at
    calendar = BusinessCalendar.from_policy(case.policy, case.holidays)
    assert near(deadline(view, "first_response").due_at, calendar.add(opened, "1bh"))
    assert near(deadline(view, "first_response_hard").due_at, opened + timedelta(hours=24))
    assert kinds(view) == ["opened", "awaiting_review"]

    await mails_arrive(stack.mail, case, "complaint_acknowledged")
    text = mail_text(stack.mail, case, "complaint_acknowledged")
    assert case.case_id in text and SEAM in text and "priority" in text
    await webhooks_arrive(stack.peers, case.case_id, "case.awaiting_review")

    view = await act(handle, "respond", actor="agent-mei", message="So sorry, we're on it.")
    assert view.status == "awaiting_review"
    view = await reach_deadline(handle, "review")
    assert deadline_names(view) == {"review"}
    responded = entry(view, "responded")
    assert (responded.actor, responded.message) == ("agent-mei", "So sorry, we're on it.")
    await mails_arrive(stack.mail, case, "complaint_response")
    assert "So sorry, we're on it." in mail_text(stack.mail, case, "complaint_response")
    assert "escalated" not in kinds(view) and not view.sla_breached
    assert mail_names(stack.mail, case) == ["complaint_acknowledged", "complaint_response"]
    await stop(stack.client, handle)


async def test_priority_follows_severity_and_negative_reviews(stack: Stack) -> None:
    now = await stack.now()
    assert complaint_input(now=now).priority == "normal"
    assert complaint_input(now=now, complaint={"negative_review": True}).priority == "high"
    case = complaint_input(now=now, complaint={"category": "payment", "negative_review": True})
    handle = await stack.start(case)
    # The hard limit runs on every day; the first clock depends on the day (a negative review
    # on a non-working day has a 2-hour one, test_complaint_negative_review.py).
    view = await reach_deadline(handle, "first_response_hard")
    assert (view.priority, view.queue) == ("high", "finance")
    await stop(stack.client, handle)


async def test_friday_evening_breach_lands_on_the_next_business_morning(stack: Stack) -> None:
    policy = Policy()
    # 17:30 on a Friday: half an hour before closing, so one business hour runs into Monday.
    friday = await skip_to_business_day(stack.env, policy, FRIDAY, time(17, 30))
    case, handle = await open_complaint(stack)
    view = await state(handle)
    calendar = BusinessCalendar.from_policy(case.policy, case.holidays)
    # The next business morning (Monday, or the day after a Monday holiday) at 09:30.
    day = friday.date() + timedelta(days=1)
    while not calendar.is_business_day(day):
        day += timedelta(days=1)
    morning = friday.replace(year=day.year, month=day.month, day=day.day, hour=9, minute=30)
    soft = deadline(view, "first_response")
    hard = deadline(view, "first_response_hard")
    assert near(soft.due_at, morning)
    local = soft.due_at.astimezone(calendar.zone)
    assert (local.strftime("%H:%M"), local.weekday() < 5) == ("09:30", True)
    # Over the weekend the 24-hour hard limit (Saturday 17:30) comes first.
    assert near(hard.due_at, friday + timedelta(hours=24))
    assert hard.due_at < soft.due_at

    await stack.env.sleep(hard.due_at - await stack.now() - timedelta(minutes=5))
    assert "escalated" not in kinds(await state(handle))
    await stack.env.sleep(timedelta(minutes=10))
    view = await reach_overdue(handle, hard)
    first = entry(view, "escalated")
    assert first.data == {"timer": "first_response_hard"}
    assert view.sla_breached and view.priority == "high"
    assert view.status == "awaiting_review"
    await ops_mails_arrive(stack.mail, case.case_id, 1)

    # Nothing more over the weekend: the business-hour clock breaches on the next morning.
    await stack.env.sleep(soft.due_at - await stack.now() - timedelta(minutes=5))
    assert kinds(await state(handle)).count("escalated") == 1
    await stack.env.sleep(timedelta(minutes=10))
    view = await reach_kind(handle, "escalated", count=2)
    second = [e for e in view.timeline if e.kind == "escalated"][1]
    assert second.data == {"timer": "first_response"}
    assert soft.due_at <= second.at <= soft.due_at + timedelta(minutes=10)
    assert view.priority == "urgent"
    view = await reach_overdue(handle, soft)
    # Both breached clocks stay listed, overdue, until an agent answers.
    assert sorted(view.deadlines, key=lambda d: d.name) == [soft, hard]
    mails = await ops_mails_arrive(stack.mail, case.case_id, 2)
    subjects = [str(m["Subject"]) for m in mails]
    assert any("first_response_hard overdue" in s for s in subjects)
    assert any("first_response overdue" in s for s in subjects)

    await act(handle, "respond", message="Sorry for the wait; we're looking into it now.")
    view = await reach_deadline(handle, "review")
    assert deadline_names(view) == {"review"}
    assert kinds(view).count("escalated") == 2
    await stop(stack.client, handle)


async def test_hard_limit_escalates_a_second_time_and_a_proposal_answers(stack: Stack) -> None:
    policy = Policy()
    monday = await skip_to_business_day(stack.env, policy, MONDAY, time(10, 0))
    case, handle = await open_complaint(stack)
    view = await state(handle)
    soft, hard = deadline(view, "first_response"), deadline(view, "first_response_hard")
    assert near(soft.due_at, monday + timedelta(hours=1))
    assert near(hard.due_at, monday + timedelta(hours=24))

    await stack.env.sleep(soft.due_at - await stack.now() + timedelta(minutes=1))
    view = await reach_overdue(handle, soft)
    assert entry(view, "escalated").data == {"timer": "first_response"}
    assert view.priority == "high" and view.sla_breached
    # Still waiting under the hard limit, with the first clock listed overdue.
    assert sorted(view.deadlines, key=lambda d: d.name) == [soft, hard]

    await stack.env.sleep(hard.due_at - await stack.now() + timedelta(minutes=1))
    view = await reach_kind(handle, "escalated", count=2)
    assert [e.data["timer"] for e in view.timeline if e.kind == "escalated"] == [
        "first_response",
        "first_response_hard",
    ]
    assert view.priority == "urgent"
    await ops_mails_arrive(stack.mail, case.case_id, 2)

    # A proposal is an answer too: both clocks stop, and nothing escalates again.
    view = await act(handle, "propose", resolution="apology", message="We're truly sorry.")
    assert view.status == "awaiting_customer"
    view = await reach_deadline(handle, "offer_response")
    assert deadline_names(view) == {"offer_response"}
    await stack.env.sleep(timedelta(days=1))
    assert len(ops_mails(stack.mail, case.case_id)) == 2
    view = await state(handle)
    assert Deadline(name="first_response", due_at=soft.due_at) not in view.deadlines
    await stop(stack.client, handle)
