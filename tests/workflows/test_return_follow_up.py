"""After the outcome: follow-up, survey and rating, then closed (DESIGN 3.2 step 7)."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    customer,
    deadline,
    deadline_names,
    entry,
    finish,
    kinds,
    mail_names,
    mails_arrive,
    near,
    reach_deadline,
    sleep_past,
    state,
)

PHOTO = ["https://img.example/chipped.jpg"]
CHEAP_MUG = [{"sku": "MUG-1", "name": "Mug", "category": "kitchen", "unit_price": "150.00"}]


async def test_survey_after_follow_up_then_rating_closes(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO, items=CHEAP_MUG)
    handle = await stack.start(case)
    view = await reach_deadline(handle, "follow_up")
    resolved_at = entry(view, "resolved").at
    assert near(deadline(view, "follow_up").due_at, resolved_at + timedelta(days=3))
    assert "survey" not in mail_names(stack.mail, case)

    await sleep_past(stack.env, handle, "follow_up")
    await mails_arrive(stack.mail, case, "survey")
    view = await reach_deadline(handle, "survey")
    assert view.status == "resolved" and deadline_names(view) == {"survey"}
    surveyed_at = resolved_at + timedelta(days=3)
    assert near(deadline(view, "survey").due_at, surveyed_at + timedelta(days=7))

    await stack.env.sleep(timedelta(days=2))
    view = await customer(handle, "rate", score=4, comment="Smooth, a bit slow")
    assert view.status == "closed" and view.rating == 4
    result = await finish(stack.env, handle, "closed")
    rated = entry(result, "rated")
    assert (rated.actor, rated.message, rated.data) == (
        "customer",
        "Smooth, a bit slow",
        {"score": 4},
    )
    assert kinds(result)[-2:] == ["rated", "closed"]
    assert result.deadlines == []
    assert mail_names(stack.mail, case).count("survey") == 1


async def test_rating_before_the_follow_up_skips_the_survey(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO, items=CHEAP_MUG)
    handle = await stack.start(case)
    await reach_deadline(handle, "follow_up")
    await stack.env.sleep(timedelta(days=1))
    await customer(handle, "rate", score=5)
    result = await finish(stack.env, handle, "closed")
    assert result.rating == 5
    assert "survey_expired" not in kinds(result)
    # Well past when the survey would have gone: it never does.
    await stack.env.sleep(timedelta(days=4))
    assert "survey" not in mail_names(stack.mail, case)
    assert (await state(handle)).status == "closed"
