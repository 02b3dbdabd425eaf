"""The web phone panel is served by the app: its files with their types, its config.json, and
nothing outside panel/dist."""

from __future__ import annotations

import pytest

from tests.fixtures.entra_dataverse import API_AUDIENCE, TENANT_ID
from tests.fixtures.product import PANEL_CLIENT_ID, Product

pytestmark = pytest.mark.e2e


def test_the_panel_page_and_its_files_are_served_with_their_types(world: Product) -> None:
    page = world.http.get(f"{world.host.url}/api/panel/", timeout=30)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script type="module" src="app.js">' in page.text
    script = world.http.get(f"{world.host.url}/api/panel/app.js", timeout=30)
    assert script.headers["Content-Type"].startswith("text/javascript")
    recording = world.http.get(f"{world.host.url}/api/panel/recording.html", timeout=30)
    assert recording.status_code == 200 and "recording.js" in recording.text
    bare = world.http.get(f"{world.host.url}/api/panel", timeout=30, allow_redirects=False)
    assert (bare.status_code, bare.headers["Location"]) == (308, "/api/panel/")


def test_nothing_outside_the_built_panel_is_served(world: Product) -> None:
    odd = (
        "panel/nope.js",
        "panel/..%2F..%2Fhost.json",
        "panel/%2e%2e/%2e%2e/host.json",
        "panel/%00",
    )
    for path in odd:
        reply = world.http.get(f"{world.host.url}/api/{path}", timeout=30)
        assert reply.status_code == 404, path
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert "extensions" not in reply.text


def test_the_config_tells_the_panel_where_to_sign_in_and_which_device_to_use(
    world: Product,
) -> None:
    config = world.http.get(f"{world.host.url}/api/panel/config.json", timeout=30).json()
    assert config["apiBase"] == f"{world.host.url}/api"
    auth = config["auth"]
    assert auth["clientId"] == PANEL_CLIENT_ID
    assert auth["authority"] == f"{world.entra.url}/{TENANT_ID}"
    assert auth["scopes"] == [f"{API_AUDIENCE}/.default"]
    assert auth["redirectUri"] == f"{world.host.url}/api/panel/"
    assert auth["knownAuthorities"] == [world.entra.url.split("://", 1)[1]]
    assert config["device"] == {"kind": "emulator", "url": world.acs.device_url}
