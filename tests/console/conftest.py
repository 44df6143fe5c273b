"""Fixtures of the console tests: a coord app, and browsers (cookie jars) that sign in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from coord.app import create_app
from coord.config import Config
from coord.keys import PROJECTION_SETTINGS
from tests.api.test_views import fast_settings

Browser = aiohttp.ClientSession


def form_value(html: str, name: str) -> str:
    """The value of the (first) hidden input `name` in a page."""
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert found is not None, f"no input {name!r} in the page"
    return found.group(1)


@pytest.fixture
async def console(config: Config, aiohttp_client: Any) -> Any:
    """A coord app (console included) with test-sized projection settings."""
    app = create_app(config)
    app[PROJECTION_SETTINGS] = fast_settings()
    return await aiohttp_client(app)


@pytest.fixture
async def browser(console: Any) -> AsyncIterator[Callable[[], Browser]]:
    """`browser()`: a fresh cookie jar against the console's server (no redirects followed)."""
    opened: list[Browser] = []

    def make() -> Browser:
        session = aiohttp.ClientSession(
            base_url=str(console.make_url("/")),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )
        opened.append(session)
        return session

    yield make
    for session in opened:
        await session.close()


async def sign_in(b: Browser, token: str, next_: str = "/") -> aiohttp.ClientResponse:
    """Sign in the way a person does: open the form, paste the token, post it."""
    page = await b.get("/masuk", params={"next": next_}, allow_redirects=False)
    assert page.status == 200
    csrf = form_value(await page.text(), "csrf")
    resp = await b.post(
        "/masuk",
        data={"csrf": csrf, "token": token, "next": next_},
        allow_redirects=False,
    )
    return resp


SignedIn = Callable[..., Awaitable[Browser]]


@pytest.fixture
def signed_in(console: Any, browser: Callable[[], Browser], token_for: Any) -> SignedIn:
    """`await signed_in(role, regions)`: a browser signed in with a fresh token of that role."""

    async def make(role: str, regions: list[str] | None = None, name: str | None = None) -> Browser:
        token = await token_for(console, role, regions, name)
        b = browser()
        resp = await sign_in(b, token)
        assert resp.status == 303, await resp.text()
        b.token = token  # type: ignore[attr-defined]
        return b

    return make
