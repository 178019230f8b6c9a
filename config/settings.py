"""Every setting in one place, read from `AFTERSALES_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLES = ("storefront", "agent", "integration", "operator")


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
    # role:key pairs; the dev stack prints its defaults so nobody has to guess them.
    api_keys: str = ",".join(f"{role}:dev-{role}" for role in ROLES)

    payment_url: str | None = None
    carrier_url: str | None = None
    webhook_url: str | None = None
    sms_url: str | None = None
    smtp_url: str | None = None
    webhook_secret: str = "dev-webhook-secret"
    carrier_webhook_secret: str = "dev-carrier-secret"
    connector_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    mail_from: str = "aftersales@localhost"
    ops_email: str | None = None
    templates_dir: Path | None = None

    data_dir: Path = Path(".aftersales")
    dev_temporal_port: int = 7233
    dev_ui_port: int = 8233

    @field_validator("api_keys")
    @classmethod
    def _role_key_pairs(cls, value: str) -> str:
        for pair in filter(None, (p.strip() for p in value.split(","))):
            role, sep, key = pair.partition(":")
            if not sep or not key or role not in ROLES:
                raise ValueError(f"{pair!r} is not role:key with a role of {', '.join(ROLES)}")
        return value

    def keys_by_token(self) -> dict[str, str]:
        """Map each API key to its role."""
        pairs = (p.strip().partition(":") for p in self.api_keys.split(",") if p.strip())
        return {key: role for role, _, key in pairs}


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
