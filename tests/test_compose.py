"""docker-compose.yml and the Dockerfile agree with the code: settings, commands, services, ports.

No Docker engine runs in CI, so these read the files and check them against the settings
model and the CLI, which is where drift would break a deployment.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml

from aftersales.cli import app
from config.settings import Settings
from notifications.email import parse_smtp_url

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SETTING_NAMES = {f"AFTERSALES_{name.upper()}" for name in Settings.model_fields}
OUR_SERVICES = ("api", "worker", "temporal-setup")
# Values for the variables compose requires from the operator (`${NAME:?message}`).
REQUIRED_SAMPLES = {
    "AFTERSALES_API_KEYS": "storefront:s1,agent:a1,integration:i1,operator:o1",
    "AFTERSALES_WEBHOOK_SECRET": "w",
    "AFTERSALES_CARRIER_WEBHOOK_SECRET": "c",
}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def cli_commands() -> set[str]:
    """The subcommands the `aftersales` typer app registers."""
    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def interpolate(value: str) -> str:
    """Resolve compose `${NAME:-default}` / `${NAME:?error}` as an unconfigured host would."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if kind == "?":
            return REQUIRED_SAMPLES[name]
        return rest if kind == "-" else ""

    return INTERPOLATION.sub(one, value).replace("$$", "$")


def environment(service: str) -> dict[str, str]:
    """A service's environment (merge keys resolved), interpolated."""
    env = SERVICES[service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: interpolate(str(value)) for name, value in env.items()}


def words(value: str | list[str] | None) -> list[str]:
    """A compose command or entrypoint as one list of strings."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(part) for part in value]


def aftersales_commands(text: str) -> list[str]:
    """Every `aftersales <command>` invoked in a command line."""
    return re.findall(r"(?<![\w/.-])aftersales\s+([a-z][\w-]*)", text)


def dockerfile_cmd() -> list[str]:
    """The Dockerfile's CMD in exec form."""
    found = re.findall(r"^CMD\s+(\[.*\])\s*$", DOCKERFILE, re.MULTILINE)
    assert len(found) == 1, "the Dockerfile needs exactly one exec-form CMD"
    cmd: list[str] = yaml.safe_load(found[0])
    return cmd


def test_every_aftersales_variable_is_a_setting() -> None:
    used = set(re.findall(r"\bAFTERSALES_[A-Z0-9_]+\b", COMPOSE_TEXT + DOCKERFILE))
    assert used, "compose sets no AFTERSALES_* variable at all"
    assert used <= SETTING_NAMES, f"not settings: {sorted(used - SETTING_NAMES)}"


@pytest.mark.parametrize("service", OUR_SERVICES)
def test_our_services_get_valid_settings(service: str) -> None:
    env = environment(service)
    assert set(env) <= SETTING_NAMES, sorted(set(env) - SETTING_NAMES)
    # Validated as the process would at start: ports are ints, api keys are role:key pairs.
    values = {name.removeprefix("AFTERSALES_").lower(): value for name, value in env.items()}
    settings = Settings.model_validate(values)
    assert settings.database_url.startswith("postgresql://")
    assert urlsplit(settings.database_url).hostname == "postgresql"
    assert settings.temporal_address.partition(":")[0] == "temporal"
    roles = set(settings.keys_by_token().values())
    assert roles == {"storefront", "agent", "integration", "operator"}


def test_every_aftersales_command_exists() -> None:
    known = cli_commands()
    invoked = []
    for name, service in SERVICES.items():
        line = " ".join(words(service.get("entrypoint")) + words(service.get("command")))
        invoked += [(name, cmd) for cmd in aftersales_commands(line)]
    assert {cmd for _, cmd in invoked} >= {"api", "worker", "temporal-setup"}
    unknown = [(name, cmd) for name, cmd in invoked if cmd not in known]
    assert not unknown, f"no such aftersales command: {unknown} (known: {sorted(known)})"


def test_the_services_are_all_there() -> None:
    needed = {"api", "worker", "temporal", "temporal-ui", "mailpit", "temporal-setup"}
    assert needed <= set(SERVICES), sorted(needed - set(SERVICES))
    assert {"postgresql", "db"} & set(SERVICES)
    images = {name: service.get("image", "") for name, service in SERVICES.items()}
    assert images["postgresql"].split(":")[0] == "postgres"
    assert images["temporal"].startswith("temporalio/auto-setup:")
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert images["mailpit"].startswith("axllent/mailpit")
    for name in OUR_SERVICES:
        assert SERVICES[name].get("build") == ".", f"{name} must be built from ./Dockerfile"


def test_dependencies_name_real_services() -> None:
    for name, service in SERVICES.items():
        depends = service.get("depends_on", [])
        assert set(depends) <= set(SERVICES), f"{name} depends on an unknown service"


def test_temporal_keeps_its_schema_in_the_postgresql_service() -> None:
    env = environment("temporal")
    assert env["DB"].startswith("postgres")
    assert env["POSTGRES_SEEDS"] == "postgresql"
    db = environment("postgresql")
    assert env["POSTGRES_USER"] == db["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == db["POSTGRES_PASSWORD"]
    assert environment("temporal-ui")["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_api_port_mapping_matches_the_api_port_setting() -> None:
    env = environment("api")
    port = int(env["AFTERSALES_API_PORT"])
    container_ports = {int(str(mapping).rsplit(":", 1)[-1]) for mapping in SERVICES["api"]["ports"]}
    assert container_ports == {port}
    assert env["AFTERSALES_API_HOST"] == "0.0.0.0", "the API must listen beyond the container"
    health = " ".join(words(SERVICES["api"]["healthcheck"]["test"]))
    assert f":{port}/readyz" in health
    assert urlsplit(env["AFTERSALES_PUBLIC_URL"]).port == port


def test_mail_goes_to_mailpit() -> None:
    target = parse_smtp_url(environment("api")["AFTERSALES_SMTP_URL"])
    assert (target.host, target.port) == ("mailpit", 1025)


def test_dockerfile_builds_the_package_and_runs_a_real_command() -> None:
    assert re.search(r"^FROM python:3\.11-slim\s*$", DOCKERFILE, re.MULTILINE)
    assert re.search(r"pip install \.(\s|$)", DOCKERFILE)
    cmd = dockerfile_cmd()
    assert cmd[0] == "aftersales" and cmd[1] in cli_commands(), cmd
    # Every package pyproject builds must be copied in, or `pip install .` ships without it.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    top_level = {name.split(".")[0] for name in pyproject["tool"]["setuptools"]["packages"]}
    copied = set(re.findall(r"^COPY\s+(\S+)\s+\./\1\s*$", DOCKERFILE, re.MULTILINE))
    assert top_level <= copied, f"not copied: {sorted(top_level - copied)}"
