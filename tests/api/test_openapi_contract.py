"""The OpenAPI document against the running API, fuzzed by schemathesis with every role's key."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.api.conftest import KEYS, Api, token_of

ST = str(Path(sys.executable).with_name("st"))


@pytest.mark.long
@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_openapi_contract(api: Api, tmp_path: Path) -> None:
    case = await api.open()
    roles = {**KEYS, "customer": token_of(case)}
    for role, key in roles.items():
        report = tmp_path / f"{role}.json"
        proc = await asyncio.create_subprocess_exec(
            ST, "run", f"{api.url}/openapi.json", "--checks", "all", "-n", "10",
            "-H", f"Authorization: Bearer {key}", "--report", "json",
            "--report-json-path", str(report), "--seed", "1", "--no-color",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        Path(f"/tmp/stA/{role}.txt").write_bytes(out)
        print(role, proc.returncode)
