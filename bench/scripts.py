"""The activity calls a "same activities" bare workflow replays, by key (a case ID).

Loaded by the bench's worker process before it starts polling; the workflow reads it through
the sandbox's passthrough, so the recorded inputs never travel in a workflow's own history.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from temporalio.api.common.v1 import Payload

# Key -> the case's steps in order: (activity name, its input payload), or ("timer", None)
# for a 1 s timer.
SCRIPTS: dict[str, list[tuple[str, Payload | None]]] = {}


def dump(path: Path, scripts: dict[str, list[tuple[str, Payload | None]]]) -> None:
    """Write scripts to a file for the worker process."""
    path.write_text(
        json.dumps(
            {
                key: [
                    [name, base64.b64encode(p.SerializeToString()).decode() if p else None]
                    for name, p in steps
                ]
                for key, steps in scripts.items()
            }
        )
    )


def load(path: Path) -> None:
    """Read the scripts a worker process replays into SCRIPTS."""
    for key, steps in json.loads(path.read_text()).items():
        SCRIPTS[key] = [
            (name, Payload.FromString(base64.b64decode(data)) if data else None)
            for name, data in steps
        ]
