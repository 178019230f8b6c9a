"""Timeouts and retries of activity calls, defined once for every workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# One attempt of any activity; a connector's own HTTP timeout (AFTERSALES_CONNECTOR_TIMEOUT_SECONDS,
# at most 300 s) should stay below it so the attempt ends with a readable timeout of our own.
ACTIVITY_TIMEOUT = timedelta(seconds=60)

# 5xx, timeouts and refused connections retry with backoff: 2 s, 4 s, 8 s ... then every
# 5 minutes. After CONNECTOR_ATTEMPTS (about 45 minutes in all) the activity fails and the
# workflow escalates the case to a person instead of retrying forever. A 4xx or a configuration
# error is never retried: the activity raises it non-retryable (activities/errors.py), so the
# policy needn't list its types in every scheduled activity's history event.
CONNECTOR_ATTEMPTS = 15
CONNECTOR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=CONNECTOR_ATTEMPTS,
)
