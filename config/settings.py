"""Every setting in one place, read from `AFTERSALES_*` environment variables."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLES = ("storefront", "agent", "integration", "operator")


@dataclass(frozen=True)
class ApiKey:
    """A role key: its role, and the name its actions are recorded under."""

    role: str
    name: str


def _parse_keys(value: str) -> dict[str, ApiKey]:
    """`role:key` or `role@name:key` pairs, comma-separated; ValueError naming a bad pair."""
    keys: dict[str, ApiKey] = {}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        who, sep, key = pair.partition(":")
        role, _, name = who.partition("@")
        if not sep or not key or role not in ROLES:
            raise ValueError(
                f"{pair!r} is not role:key or role@name:key with a role of {', '.join(ROLES)}"
            )
        # Without a name, a key is recorded as what it is: `agent-key` never passes for an
        # agent's own name.
        keys[key] = ApiKey(role=role, name=name.strip() or f"{role}-key")
    return keys


@lru_cache(maxsize=8)
def _keys(value: str) -> dict[str, ApiKey]:
    # Parsed once per value: the bearer check of every request reads it.
    return _parse_keys(value)


def secret_digest(secret: str) -> str:
    """The SHA-256 of a bearer secret (API key, customer token), as hex: what look-ups compare."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@lru_cache(maxsize=8)
def _keys_by_digest(value: str) -> dict[str, ApiKey]:
    # Keyed by digest, so the bearer check never compares the raw key with a caller's guess:
    # a dict look-up (or ==) of the raw string stops at the first differing character, and
    # its time tells a guesser how much of a key they have right. A digest's prefix tells
    # nothing about the key's.
    return {secret_digest(key): api_key for key, api_key in _parse_keys(value).items()}


# Every setting whose default is a published dev secret: `aftersales dev` prints them, so a
# service started outside dev mode with any of them left as is is open to anyone.
DEV_SECRETS = {
    "api_keys": "AFTERSALES_API_KEYS",
    "webhook_secret": "AFTERSALES_WEBHOOK_SECRET",
    "carrier_webhook_secret": "AFTERSALES_CARRIER_WEBHOOK_SECRET",
}
# What each part of the service holds: the API checks bearer keys and carrier signatures; the
# worker signs the storefront webhooks it posts.
API_SECRETS = ("api_keys", "carrier_webhook_secret")
WORKER_SECRETS = ("webhook_secret",)


class DevSecretsRefused(RuntimeError):
    """A service would start outside dev mode with a dev key or secret; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AFTERSALES_", extra="ignore")

    database_url: str = "sqlite:///.aftersales/aftersales.db"
    policy: Path | None = None

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    # A private CA for a self-hosted cluster; the system roots are used when unset.
    temporal_tls_ca: Path | None = None
    temporal_api_key: str | None = None
    task_queue: str = "aftersales"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = "http://localhost:8000"
    # role:key (or role@name:key) pairs; the dev stack prints its defaults so nobody has to
    # guess them. A key's actions are recorded under its name (`<role>-key` without one).
    api_keys: str = ",".join(f"{role}:dev-{role}" for role in ROLES)

    payment_url: str | None = None
    carrier_url: str | None = None
    webhook_url: str | None = None
    sms_url: str | None = None
    # The storefront's own API: store credit and complaint coupons (`POST /store-credits`).
    storefront_url: str | None = None
    smtp_url: str | None = None
    webhook_secret: str = "dev-webhook-secret"
    carrier_webhook_secret: str = "dev-carrier-secret"
    connector_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    mail_from: str = "aftersales@localhost"
    ops_email: str | None = None
    templates_dir: Path | None = None
    # Agents' ready-made replies (api/console/canned_replies.toml when unset).
    canned_replies: Path | None = None

    # Where the worker serves Prometheus metrics (host:port; off when unset): its own (partner
    # calls by result and latency), and the Temporal SDK's (task latencies, slots, polls).
    worker_metrics_address: str | None = None
    temporal_metrics_address: str | None = None

    # Worker tuning (docs/scaling.md): the cases a worker keeps in memory between their tasks
    # (its sticky cache), and the polls it keeps open for workflow and for activity tasks.
    worker_max_cached_workflows: int = Field(default=1000, ge=0, le=100_000)
    worker_workflow_pollers: int = Field(default=5, ge=1, le=100)
    worker_activity_pollers: int = Field(default=5, ge=1, le=100)

    # How the API and the worker write their log lines: `text` for people, `json` (one object
    # a line, with request, case, workflow and activity fields) for a log pipeline.
    log_format: Literal["text", "json"] = "text"

    data_dir: Path = Path(".aftersales")
    # Dev mode admits the published dev keys and secrets: `aftersales dev` and the test stacks
    # set it. Outside it the API and the worker refuse to start with any of them (DEV_SECRETS).
    dev_mode: bool = False
    # Failed customer-token guesses (status page, customer API) one client address may make
    # within the window; past that it is answered 429 until the window has room again.
    token_guess_limit: int = Field(default=20, ge=1)
    token_guess_window_seconds: float = Field(default=600.0, gt=0)
    dev_temporal_port: int = 7233
    dev_ui_port: int = 8233
    # Where operators open the Temporal UI (the console links each case's workflow page);
    # the dev stack's own UI when unset.
    temporal_ui_url: str | None = None

    @field_validator("api_keys")
    @classmethod
    def _role_key_pairs(cls, value: str) -> str:
        _parse_keys(value)
        return value

    def api_keys_by_token(self) -> dict[str, ApiKey]:
        """Map each API key to its role and name."""
        return _keys(self.api_keys)

    def keys_by_token(self) -> dict[str, str]:
        """Map each API key to its role."""
        return {key: api_key.role for key, api_key in self.api_keys_by_token().items()}

    def api_key_for(self, bearer: str) -> ApiKey | None:
        """The role key a bearer secret is, found by its digest (never by the raw secret)."""
        return _keys_by_digest(self.api_keys).get(secret_digest(bearer))

    def dev_secrets_in_use(self, names: tuple[str, ...] = API_SECRETS) -> list[str]:
        """The environment variables of those settings still holding a dev default."""
        defaults = type(self).model_fields
        dev_keys = {f"dev-{role}" for role in ROLES}
        found = []
        for name in names:
            value, default = getattr(self, name), defaults[name].default
            # A key list counts if any of its keys is a dev key, whatever else it holds.
            if value == default or (name == "api_keys" and dev_keys & set(_keys(value))):
                found.append(DEV_SECRETS[name])
        return found

    def refuse_dev_secrets(self, part: str, names: tuple[str, ...] = API_SECRETS) -> None:
        """Raise DevSecretsRefused naming each dev secret `part` would start with, unless in
        dev mode."""
        found = [] if self.dev_mode else self.dev_secrets_in_use(names)
        if found:
            raise DevSecretsRefused(
                f"the {part} refuses to start with the dev defaults of {', '.join(found)}: "
                "set each to a secret of your own, or AFTERSALES_DEV_MODE=true on a dev "
                "machine (`aftersales dev` sets it)."
            )


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
