"""Where the Temporal binaries shipped as Python packages live."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find(name: str) -> str:
    """The path of a binary installed into this environment, or else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} is not installed; run `make dev` or `pip install -e .[dev]`"
        )
    return found
