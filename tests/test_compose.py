"""docker-compose.yml and the Dockerfile agree with the code: settings, commands, services, ports;
and the scaled profile's proxy, Prometheus and Grafana agree with the services they front.

No Docker engine runs in CI, so these read the files and check them against the settings
model and the CLI, which is where drift would break a deployment.
"""

from __future__ import annotations

import json
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
# The services built from ./Dockerfile: the default set and the scaled profile's replicas.
OUR_SERVICES = tuple(name for name, service in SERVICES.items() if service.get("build") == ".")
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


# --- the scaled profile -------------------------------------------------------------------

SCALED = "scaled"
NGINX_CONF = ROOT / "deploy/nginx/nginx.conf"


def in_profile(name: str, profile: str = SCALED) -> bool:
    """Whether `docker compose --profile <profile> up` starts the service."""
    profiles = SERVICES[name].get("profiles")
    return not profiles or profile in profiles


def running(command: str) -> list[str]:
    """The scaled profile's services that run `aftersales <command>`."""
    return [
        name
        for name, service in SERVICES.items()
        if in_profile(name) and words(service.get("command"))[:2] == ["aftersales", command]
    ]


def mounts(service: str) -> dict[str, Path]:
    """A service's bind mounts from the repository: container path -> file in the repo."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if source.startswith("./"):
            found[rest.split(":")[0]] = ROOT / source
    return found


def mounted_file(service: str, path: str) -> Path:
    """The repository file a service sees at `path`, through a file or a directory mount."""
    for target, source in mounts(service).items():
        if path == target:
            return source
        if path.startswith(target.rstrip("/") + "/"):
            return source / path[len(target.rstrip("/")) + 1 :]
    raise AssertionError(f"{service} mounts nothing at {path}")


def port_of(address: str) -> int:
    """The port of a host:port."""
    return int(address.rpartition(":")[2])


def test_every_aftersales_option_exists() -> None:
    # `aftersales api --log-level warning`: each option must be one the command takes.
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name, service in SERVICES.items():
        command = words(service.get("command"))
        if command[:1] != ["aftersales"]:
            continue
        sub = commands[command[1]]
        options = {opt for param in sub.params for opt in param.opts}
        given = [part.split("=")[0] for part in command[2:] if part.startswith("-")]
        assert set(given) <= options, f"{name}: {sorted(set(given) - options)} not in {options}"


def test_the_scaled_profile_runs_two_apis_two_workers_and_the_monitoring() -> None:
    assert len(running("api")) == 2, running("api")
    assert len(running("worker")) == 2, running("worker")
    # The default profile stays as it was: one API, one worker, no proxy or monitoring.
    default = [name for name in SERVICES if in_profile(name, "default")]
    assert {"api", "worker"} <= set(default)
    assert not {"api-2", "worker-2", "proxy", "prometheus", "grafana"} & set(default)
    images = {name: str(SERVICES[name].get("image", "")) for name in SERVICES}
    assert images["proxy"].startswith("nginx:")
    assert images["prometheus"].startswith("prom/prometheus:")
    assert images["grafana"].startswith("grafana/grafana:")
    for name in ("postgresql", "temporal", "temporal-setup"):
        assert in_profile(name), f"{name} must run in the scaled profile too"
    # Only the first API migrates a fresh database: every other replica waits for it.
    first, *others = running("api")
    for name in others + running("worker"):
        assert SERVICES[name]["depends_on"][first]["condition"] == "service_healthy", name
    # The replicas publish no host port of their own: the proxy is the way in.
    assert not SERVICES["api-2"].get("ports")


def test_every_mounted_config_file_exists() -> None:
    mounted = {name: mounts(name) for name in SERVICES}
    assert mounted["proxy"] and mounted["prometheus"] and mounted["grafana"]
    for name, found in mounted.items():
        for target, source in found.items():
            assert source.exists(), f"{name} mounts {source.relative_to(ROOT)} at {target}"
    assert mounted_file("proxy", "/etc/nginx/nginx.conf") == NGINX_CONF


def test_the_proxy_balances_over_the_api_replicas() -> None:
    conf = NGINX_CONF.read_text()
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{([^}]*)\}", conf))
    assert len(upstreams) == 1, upstreams
    [(upstream, body)] = upstreams.items()
    servers = set(re.findall(r"^\s*server\s+([\w.-]+):(\d+)", body, re.MULTILINE))
    replicas = {(name, environment(name)["AFTERSALES_API_PORT"]) for name in running("api")}
    assert servers == replicas
    assert re.findall(r"proxy_pass\s+http://(\w+);", conf) == [upstream]
    # nginx listens where compose publishes it.
    listen = set(re.findall(r"^\s*listen\s+(\d+);", conf, re.MULTILINE))
    published = {str(mapping).rsplit(":", 1)[-1] for mapping in SERVICES["proxy"]["ports"]}
    assert listen == published
    # Upstream connections close before the API closes them (API_KEEP_ALIVE_SECONDS).
    from aftersales.cli import API_KEEP_ALIVE_SECONDS

    keepalive = re.search(r"keepalive_timeout\s+(\d+)s;", body)
    assert keepalive and int(keepalive.group(1)) < API_KEEP_ALIVE_SECONDS
    # The access log shows status tokens redacted, as the API's own does.
    formats = re.findall(r"log_format\s+\w+((?:\s*'[^']*')+)", conf)
    assert formats and all("$redacted_uri" in f for f in formats)
    assert not any(re.search(r"\$request(_uri)?\b", f) for f in formats)
    assert re.search(r"access_log\s+\S+\s+redacted;", conf)


def prometheus_config() -> dict[str, Any]:
    """The scaled profile's prometheus.yml, as the service mounts it."""
    flags = dict(
        part.removeprefix("--").split("=", 1)
        for part in words(SERVICES["prometheus"]["command"])
        if part.startswith("--")
    )
    config: dict[str, Any] = yaml.safe_load(
        mounted_file("prometheus", flags["config.file"]).read_text()
    )
    return config


def test_prometheus_scrapes_every_api_and_worker_and_loads_the_rules() -> None:
    config = prometheus_config()
    jobs = {
        job["job_name"]: {t for c in job["static_configs"] for t in c["targets"]}
        for job in config["scrape_configs"]
    }
    api_targets = {f"{n}:{environment(n)['AFTERSALES_API_PORT']}" for n in running("api")}
    worker_targets = {
        f"{n}:{port_of(environment(n)['AFTERSALES_WORKER_METRICS_ADDRESS'])}"
        for n in running("worker")
    }
    sdk_targets = {
        f"{n}:{port_of(environment(n)['AFTERSALES_TEMPORAL_METRICS_ADDRESS'])}"
        for n in running("worker")
    }
    assert jobs == {
        "aftersales-api": api_targets,
        "aftersales-worker": worker_targets,
        "aftersales-temporal-sdk": sdk_targets,
    }
    # Every worker serves both endpoints beyond its container.
    for name in running("worker"):
        env = environment(name)
        for setting in ("AFTERSALES_WORKER_METRICS_ADDRESS", "AFTERSALES_TEMPORAL_METRICS_ADDRESS"):
            assert env[setting].startswith("0.0.0.0:"), (name, setting)
    rules = [mounted_file("prometheus", path) for path in config["rule_files"]]
    assert rules == [ROOT / "deploy/prometheus/alerts.yml"]
    assert yaml.safe_load(rules[0].read_text())["groups"]


def test_grafana_reads_prometheus_and_the_dashboards() -> None:
    provisioning = mounted_file("grafana", "/etc/grafana/provisioning")
    [datasource] = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    url = urlsplit(datasource["url"])
    assert (url.hostname, url.port) == ("prometheus", 9090)
    assert {str(p).rsplit(":", 1)[-1] for p in SERVICES["prometheus"]["ports"]} == {"9090"}
    [provider] = yaml.safe_load((provisioning / "dashboards/aftersales.yml").read_text())[
        "providers"
    ]
    dashboards = mounted_file("grafana", provider["options"]["path"])
    files = sorted(dashboards.glob("*.json"))
    assert len(files) >= 5, files
    for file in files:
        dashboard = json.loads(file.read_text())
        for panel in dashboard["panels"]:
            for source in [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]:
                assert source == {"type": "prometheus", "uid": datasource["uid"]}, file.name
