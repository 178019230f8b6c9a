"""Outside dev mode the API and the worker refuse the published dev keys and secrets; API keys
are looked up by digest, never by the raw secret."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aftersales.cli import app as cli
from api.app import create_app
from config.settings import WORKER_SECRETS, ApiKey, DevSecretsRefused, Settings

OWN = {
    "api_keys": "storefront:sf-own-1,agent@mei:agent-own-2",
    "webhook_secret": "own-webhook-secret",
    "carrier_webhook_secret": "own-carrier-secret",
}


class Tripwire(str):
    """A secret that fails the test if anything hashes it or compares it as a string: a dict
    look-up or `==` of the raw secret does both; a look-up by its digest only encodes it."""

    def __hash__(self) -> int:
        raise AssertionError("the raw secret was hashed (a dict or set look-up)")

    def __eq__(self, other: object) -> bool:
        raise AssertionError("the raw secret was compared with ==")

    def __ne__(self, other: object) -> bool:
        raise AssertionError("the raw secret was compared with !=")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only what a test sets: the machine's own AFTERSALES_* must not decide the outcome.
    import os

    for name in list(os.environ):
        if name.startswith("AFTERSALES_"):
            monkeypatch.delenv(name)


def test_every_dev_secret_is_named_and_refused_outside_dev_mode() -> None:
    with pytest.raises(DevSecretsRefused) as refused:
        Settings().refuse_dev_secrets("API")
    message = str(refused.value)
    assert "AFTERSALES_API_KEYS" in message and "AFTERSALES_CARRIER_WEBHOOK_SECRET" in message
    assert "AFTERSALES_DEV_MODE" in message
    with pytest.raises(DevSecretsRefused, match=r"worker.*AFTERSALES_WEBHOOK_SECRET"):
        Settings().refuse_dev_secrets("worker", WORKER_SECRETS)
    # One dev key among keys of one's own is as open as all of them.
    mixed = Settings(**{**OWN, "api_keys": f"{OWN['api_keys']},operator:dev-operator"})
    assert mixed.dev_secrets_in_use() == ["AFTERSALES_API_KEYS"]
    # Own secrets everywhere: nothing refused, in either part.
    Settings(**OWN).refuse_dev_secrets("API")
    Settings(**OWN).refuse_dev_secrets("worker", WORKER_SECRETS)
    # Dev mode admits them.
    Settings(dev_mode=True).refuse_dev_secrets("API")


@pytest.mark.parametrize(("command", "named"), [("api", "API_KEYS"), ("worker", "WEBHOOK")])
def test_the_api_and_worker_commands_exit_before_starting(command: str, named: str) -> None:
    # Nothing is listening on the Temporal address: a command that got past the check would
    # hang connecting or fail differently.
    env = {"AFTERSALES_TEMPORAL_ADDRESS": "127.0.0.1:9", "AFTERSALES_DATABASE_URL": "sqlite://"}
    result = CliRunner().invoke(cli, [command], env=env)
    assert result.exit_code == 1, result.output
    assert f"refuses to start with the dev defaults of AFTERSALES_{named}" in result.output


async def test_an_app_served_otherwise_refuses_in_its_start_up() -> None:
    app = create_app(Settings(temporal_address="127.0.0.1:9", database_url="sqlite://"))
    with pytest.raises(DevSecretsRefused, match="AFTERSALES_CARRIER_WEBHOOK_SECRET"):
        async with app.router.lifespan_context(app):
            pass


def test_api_keys_are_looked_up_by_digest_never_by_the_raw_key() -> None:
    settings = Settings(**OWN)
    assert settings.api_key_for(Tripwire("agent-own-2")) == ApiKey(role="agent", name="mei")
    assert settings.api_key_for(Tripwire("sf-own-1")) == ApiKey(
        role="storefront", name="storefront-key"
    )
    assert settings.api_key_for(Tripwire("sf-own-")) is None
    assert settings.api_key_for("") is None
