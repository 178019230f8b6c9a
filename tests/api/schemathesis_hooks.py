"""Schemathesis hooks for the contract test (loaded by its `st` runs, not by pytest).

The carrier webhook's credential is a signature of the body's bytes: fuzzed unsigned, every
request stops at the 401 and its validation is never reached. A request that carries the
signature header gets a valid signature of exactly the bytes sent; one without it stays
unsigned, so the 401 stays covered.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import schemathesis
from schemathesis.core import NotSet

from activities import signing

WEBHOOK = "/v1/webhooks/carrier"
SECRET = os.environ["CONTRACT_CARRIER_SECRET"]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Sign the carrier webhook's body with the test stack's secret."""
    if case.operation.path != WEBHOOK or not case.headers:
        return
    name = next((h for h in case.headers if h.lower() == signing.HEADER.lower()), None)
    if name is None:
        return
    if isinstance(case.body, NotSet):
        body = b""
    elif isinstance(case.body, bytes):
        body = case.body
    else:
        # Sent as these bytes (not re-encoded by the transport), so the signature holds.
        body = json.dumps(case.body).encode()
        kwargs["data"] = body
    case.headers[name] = signing.sign(SECRET, body, timestamp=int(time.time()))
