"""Failed customer-token guesses are limited per client address, over real HTTP: past the
limit the status page and the customer API answer 429 problem+json with Retry-After; other
addresses, and a customer's own valid requests, are unaffected."""

from __future__ import annotations

import time

import httpx

from api.app import create_app
from api.guesses import TokenGuesses
from tests.api.conftest import POLICY, Api, assert_problem, token_of
from tests.support.serving import serving

LIMIT = 3
WINDOW = 60.0
WRONG = "wrong-token-for-a-guess"


def _from(address: str, token: str | None = None) -> dict[str, str]:
    # The test server trusts X-Forwarded-For from 127.0.0.1, as behind a reverse proxy.
    headers = {"X-Forwarded-For": address, "Accept": "application/json"}
    return headers | ({"Authorization": f"Bearer {token}"} if token else {})


async def test_wrong_tokens_from_one_address_are_refused_with_429(api: Api) -> None:
    case = await api.open()
    token, case_id = token_of(case), case["id"]
    settings = api.settings.model_copy(
        update={"token_guess_limit": LIMIT, "token_guess_window_seconds": WINDOW}
    )
    app = create_app(settings, client=api.env.client, engine=api.engine, policy_=POLICY)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        guesser, customer, other = "203.0.113.7", "198.51.100.20", "198.51.100.30"

        # A customer's own link, used more often than the limit, never counts.
        for _ in range(LIMIT + 2):
            page = await http.get(f"/status/{token}", headers=_from(customer))
            assert page.status_code == 200
            own = await http.get(f"/v1/cases/{case_id}", headers=_from(customer, token))
            assert own.status_code == 200, own.text

        # Misses on the status page, its form and the customer API all count.
        assert (await http.get(f"/status/{WRONG}", headers=_from(guesser))).status_code == 404
        missed = await http.get(f"/v1/cases/{case_id}", headers=_from(guesser, WRONG))
        assert missed.status_code == 401
        form = await http.post(
            f"/status/{WRONG}/actions", data={"action": "cancel"}, headers=_from(guesser)
        )
        assert form.status_code == 404

        refused = await http.get(f"/status/{WRONG}2", headers=_from(guesser))
        body = assert_problem(refused, 429, type_suffix="too-many-guesses")
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= WINDOW and str(wait) in body["detail"]
        api_refused = await http.get(f"/v1/cases/{case_id}", headers=_from(guesser, WRONG))
        assert_problem(api_refused, 429, type_suffix="too-many-guesses")
        assert "Retry-After" in api_refused.headers
        # Refused before the look-up: a hit would tell the guesser it had found a token.
        hit = await http.get(f"/status/{token}", headers=_from(guesser))
        assert hit.status_code == 429

        # Other addresses are unaffected: a valid token opens its case, a miss is a plain 404.
        assert (await http.get(f"/status/{token}", headers=_from(other))).status_code == 200
        assert (await http.get(f"/status/{WRONG}", headers=_from(other))).status_code == 404
        # API keys never go through the count.
        listed = await http.get("/v1/cases", headers=_from(guesser, "operator-test-key"))
        assert listed.status_code == 200, listed.text

        # Once the window has passed, the address may try again.
        guesses: TokenGuesses = app.state.token_guesses
        guesses.clock = lambda: time.monotonic() + WINDOW + 1
        assert (await http.get(f"/status/{token}", headers=_from(guesser))).status_code == 200


def test_retry_after_counts_down_to_when_the_window_has_room() -> None:
    now = [1000.0]
    guesses = TokenGuesses(limit=2, window_seconds=10, clock=lambda: now[0])
    guesses.failed("a")
    now[0] += 4
    guesses.failed("a")
    assert guesses.retry_after("a") == 6  # the first miss leaves the window in 6 s
    assert guesses.retry_after("b") is None
    now[0] += 6
    assert guesses.retry_after("a") is None
    guesses.failed("a")
    assert guesses.retry_after("a") == 4
