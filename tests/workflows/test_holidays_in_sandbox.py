"""A case's calendar inside the workflow sandbox, past the holiday years the case carries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from domain.calendar import BusinessCalendar, case_holidays
    from domain.policy import Policy

POLICY = Policy(holidays="TW")


@dataclass
class Ask:
    """A case's carried holiday table and the day to ask about."""

    table: dict[int, list[date]]
    day: date


@workflow.defn(name="TestHolidaysPastTheTable")
class HolidaysPastTheTable:
    """Answers whether a day is a holiday on a calendar handed a case's holidays."""

    @workflow.run
    async def run(self, ask: Ask) -> bool:
        """Whether the day is a public holiday on the case's calendar."""
        return BusinessCalendar.from_policy(POLICY, ask.table).is_holiday(ask.day)


async def test_a_day_past_the_carried_holidays_answers_instead_of_failing_the_task(
    time_skipping: WorkflowEnvironment,
) -> None:
    # Looking the year up would read the holidays package's locale data, which the sandbox
    # refuses ("locale.normalize restricted"): the task would fail on every retry.
    # (Imported here: the sandbox re-imports this module, and the worker's imports aren't
    # workflow-safe.)
    from aftersales.worker import workflow_runner

    table = case_holidays(POLICY, datetime(2026, 10, 10, 2, tzinfo=UTC))  # 2026 to 2028
    queue = f"holidays-{uuid.uuid4().hex[:8]}"
    client = time_skipping.client
    async with Worker(
        client,
        task_queue=queue,
        workflows=[HolidaysPastTheTable],
        workflow_runner=workflow_runner(),
    ):
        for day, expected in ((date(2027, 1, 1), True), (date(2030, 1, 1), False)):
            answer = await client.execute_workflow(
                HolidaysPastTheTable.run,
                Ask(table=table, day=day),
                id=f"{queue}-{day}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=20),
            )
            assert answer is expected, day
