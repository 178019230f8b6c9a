"""A negative review opened on a non-working day is answered within 2 hours of real time; on a
working day it keeps the business-hour clock (issue 11)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from temporalio.testing import WorkflowEnvironment

from domain.calendar import BusinessCalendar
from domain.policy import Policy
from tests.conftest import Stack
from tests.workflows.complaints import complaint_input, skip_to_business_day
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
    ops_mails_arrive,
    reach_deadline,
    reach_overdue,
    state,
    stop,
)

SUNDAY, MONDAY = 6, 0
REVIEW = {"category": "logistics", "channel": "google_reviews", "negative_review": True}


async def skip_to_sunday(env: WorkflowEnvironment, policy: Policy, at: time) -> datetime:
    """Move the shared clock to `at` shop time on the next Sunday (every other case stopped)."""
    zone = BusinessCalendar.from_policy(policy).zone
    now = (await env.get_current_time()).astimezone(zone)
    day = now.date() + timedelta(days=1)
    while day.weekday() != SUNDAY:
        day += timedelta(days=1)
    target = datetime.combine(day, time(at.hour, at.minute), tzinfo=zone)
    await env.sleep(target - now)
    return target


async def test_a_sunday_negative_review_escalates_after_two_hours(stack: Stack) -> None:
    sunday = await skip_to_sunday(stack.env, Policy(), time(10, 0))
    case = complaint_input(now=await stack.now(), complaint=REVIEW)
    handle = await stack.start(case)
    view = await reach_deadline(handle, "negative_review_response")
    assert view.priority == "high" and view.status == "awaiting_review"
    assert deadline_names(view) == {"negative_review_response", "first_response_hard"}
    opened = entry(view, "opened").at
    clock = deadline(view, "negative_review_response")
    # Two hours of real time, on a Sunday: not the business hour that starts on Monday.
    assert near(clock.due_at, opened + timedelta(hours=2))
    assert near(deadline(view, "first_response_hard").due_at, opened + timedelta(hours=24))
    await mails_arrive(stack.mail, case, "complaint_acknowledged")
    # The customer is promised the 2-hour answer.
    assert "12:00 (Asia/Taipei)" in mail_text(stack.mail, case, "complaint_acknowledged")
    assert sunday.hour == 10

    await stack.env.sleep(clock.due_at - await stack.now() - timedelta(minutes=5))
    assert "escalated" not in kinds(await state(handle))
    await stack.env.sleep(timedelta(minutes=10))
    view = await reach_overdue(handle, clock)
    escalated = entry(view, "escalated")
    assert escalated.data == {"timer": "negative_review_response"}
    assert "2 hours" in escalated.message
    assert view.sla_breached and view.priority == "urgent"
    [ops] = await ops_mails_arrive(stack.mail, case.case_id, 1)
    assert "negative_review_response overdue" in str(ops["Subject"])

    await act(handle, "respond", actor="agent-on-call", message="We're sorry; we're on it.")
    view = await reach_deadline(handle, "review")
    assert deadline_names(view) == {"review"}
    assert kinds(view).count("escalated") == 1
    await mails_arrive(stack.mail, case, "complaint_response")
    assert mail_names(stack.mail, case) == ["complaint_acknowledged", "complaint_response"]
    await stop(stack.client, handle)


async def test_a_weekday_negative_review_keeps_the_business_hour_clock(stack: Stack) -> None:
    monday = await skip_to_business_day(stack.env, Policy(), MONDAY, time(10, 0))
    case = complaint_input(now=await stack.now(), complaint=REVIEW)
    handle = await stack.start(case)
    view = await reach_deadline(handle, "first_response")
    assert deadline_names(view) == {"first_response", "first_response_hard"}
    assert near(deadline(view, "first_response").due_at, monday + timedelta(hours=1))
    assert view.priority == "high"
    await stop(stack.client, handle)
