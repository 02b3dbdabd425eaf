"""CORS in the local Functions host, as Core Tools applies local.settings.json `Host.CORS` and
`Host.CORSCredentials`: preflights answered before any function runs, the origin echoed only
for listed origins, `*` for any origin, the credentials header only when asked for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.common.processes import Azurite
from emulators.functions_host.launcher import HostProcess, HostStartError
from tests.e2e.test_host_semantics import APP_DIR, SETTINGS, app_env, read_records
from tests.fixtures.host import HostFactory

pytestmark = pytest.mark.e2e

D365 = "https://contoso.crm4.dynamics.com"


def settings_with(tmp: Path, host_section: dict[str, Any] | None) -> Path:
    raw = json.loads(SETTINGS.read_text(encoding="utf-8"))
    if host_section is not None:
        raw["Host"] = host_section
    path = tmp / "local.settings.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def start(
    factory: HostFactory, tmp: Path, azurite: Azurite, host_section: dict[str, Any] | None
) -> tuple[HostProcess, Path]:
    records = tmp / "records"
    host = factory(
        APP_DIR, app_env(records, azurite), settings_file=settings_with(tmp, host_section)
    )
    return host, records


def preflight(host: HostProcess, origin: str) -> requests.Response:
    return requests.options(
        f"{host.url}/v1/public/x",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=10,
    )


@pytest.fixture(scope="module")
def listed(
    module_functions_host: HostFactory, azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> tuple[HostProcess, Path]:
    tmp = tmp_path_factory.mktemp("cors-listed")
    section = {"CORS": f"{D365}, https://Panel.Example/", "CORSCredentials": True}
    return start(module_functions_host, tmp, azurite, section)


def test_a_preflight_from_a_listed_origin_is_answered_without_running_a_function(
    listed: tuple[HostProcess, Path],
) -> None:
    host, records = listed
    answer = preflight(host, D365)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == D365
    assert answer.headers["Access-Control-Allow-Methods"] == "POST"
    assert answer.headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    # Origins compare as ASP.NET Core does: case-insensitively, the trailing slash ignored.
    other = preflight(host, "https://panel.example")
    assert other.headers["Access-Control-Allow-Origin"] == "https://panel.example"
    assert not read_records(records, "public")  # the middleware answered, not the function


def test_an_unlisted_origin_gets_no_cors_headers(listed: tuple[HostProcess, Path]) -> None:
    host, _ = listed
    answer = preflight(host, "https://evil.example")
    assert answer.status_code == 204
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
    actual = requests.get(
        f"{host.url}/v1/public/y", headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert actual.status_code == 200  # CORS is the browser's check; the server still answers
    assert "Access-Control-Allow-Origin" not in actual.headers


def test_an_actual_request_from_a_listed_origin_carries_the_allow_headers(
    listed: tuple[HostProcess, Path],
) -> None:
    host, _ = listed
    actual = requests.post(
        f"{host.url}/v1/public/z", data=b"{}", headers={"Origin": D365}, timeout=10
    )
    assert actual.status_code == 201 and actual.json()["rest"] == "z"
    assert actual.headers["Access-Control-Allow-Origin"] == D365
    assert actual.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in actual.headers["Vary"]
    assert actual.headers["x-hostapp"] == "yes"
    # A 404 of the host gets them too: the middleware wraps everything.
    missing = requests.get(f"{host.url}/v1/nothing-here", headers={"Origin": D365}, timeout=10)
    assert missing.status_code == 404
    assert missing.headers["Access-Control-Allow-Origin"] == D365


def test_a_wildcard_allows_any_origin_without_credentials(
    functions_host: HostFactory, azurite: Azurite, tmp_path: Path
) -> None:
    host, _ = start(functions_host, tmp_path, azurite, {"CORS": "*"})
    answer = preflight(host, "https://anyone.example")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in answer.headers
    actual = requests.get(
        f"{host.url}/v1/public/w", headers={"Origin": "https://anyone.example"}, timeout=10
    )
    assert actual.headers["Access-Control-Allow-Origin"] == "*"


def test_without_host_cors_there_is_no_cors_at_all(
    functions_host: HostFactory, azurite: Azurite, tmp_path: Path
) -> None:
    host, _ = start(functions_host, tmp_path, azurite, None)
    answer = preflight(host, D365)
    assert answer.status_code == 404  # no middleware: OPTIONS reaches the routes
    assert "Access-Control-Allow-Origin" not in answer.headers
    actual = requests.get(f"{host.url}/v1/public/v", headers={"Origin": D365}, timeout=10)
    assert actual.status_code == 200 and "Access-Control-Allow-Origin" not in actual.headers


def test_a_wildcard_with_credentials_stops_the_host_as_aspnet_core_does(
    functions_host: HostFactory, azurite: Azurite, tmp_path: Path
) -> None:
    with pytest.raises(HostStartError) as refused:
        start(functions_host, tmp_path, azurite, {"CORS": "*", "CORSCredentials": True})
    assert "wildcard origin with credentials" in str(refused.value)
