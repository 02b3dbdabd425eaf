"""The OpenAPI document describes exactly the routes the app registers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from functions.openapi import document

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
JSON = "application/json"
LIST_ROUTES = """
import json, function_app
routes = set()
for fn in function_app.app.get_functions():
    for binding in fn.get_bindings():
        data = binding.get_dict_repr()
        if data.get("type") == "httpTrigger":
            for method in data.get("methods") or ["GET"]:
                name = getattr(method, "value", method)
                # A catch-all {*path} is the path parameter {path} in OpenAPI.
                routes.add(("/" + data["route"].replace("{*", "{"), str(name).lower()))
print(json.dumps(sorted(routes)))
"""


def registered_routes() -> set[tuple[str, str]]:
    env = {**os.environ, **json.loads((ROOT / "local.settings.json").read_text())["Values"]}
    out = subprocess.run(
        [sys.executable, "-c", LIST_ROUTES],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return {(path, method) for path, method in json.loads(out.stdout)}


def documented_routes() -> set[tuple[str, str]]:
    return {(path, method) for path, ops in document("test")["paths"].items() for method in ops}


def test_every_registered_route_is_documented_and_nothing_else() -> None:
    registered, documented = registered_routes(), documented_routes()
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "documented routes the app does not have"


def test_the_document_is_openapi_3_1_with_resolvable_references() -> None:
    doc = document("1.0")
    assert doc["openapi"] == "3.1.0"
    text = json.dumps(doc)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, path


def test_docs_api_md_has_the_generated_operations_table() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import api_docs

    text = (ROOT / "docs" / "api.md").read_text()
    section = text.split(api_docs.START, 1)[1].split(api_docs.END, 1)[0].strip()
    assert section == api_docs.table(), "docs/api.md is stale: run python scripts/api_docs.py"


def test_every_status_the_services_answer_is_documented_with_its_schema() -> None:
    paths = document("1.0")["paths"]
    dial = paths["/me/calls"]["post"]["responses"]
    # 409: on another call; 413/415: the body over its limit or not JSON
    assert set(dial) == {"201", "400", "401", "403", "409", "413", "415", "422", "503"}
    assert paths["/me/calls"]["post"]["x-max-body-bytes"] == 16 * 1024
    assert dial["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CallView"
    }
    # The function key is the host's: its 401 has no body, and the document says so.
    intake = paths["/callbacks"]["post"]["responses"]["401"]
    assert "content" not in intake and "empty body" in intake["description"]
    agent_401 = paths["/me/calls/current"]["get"]["responses"]["401"]
    assert "application/problem+json" in agent_401["content"]
    assert paths["/me/session/{sessionId}"]["delete"]["responses"]["204"] == {
        "description": "Done; no body"
    }


def test_views_are_closed_and_bodies_open_with_their_limits() -> None:
    schemas = document("1.0")["components"]["schemas"]
    assert schemas["CallView"]["additionalProperties"] is False
    assert "callbackRequested" in schemas["CallView"]["properties"]["outcome"]["enum"]
    assert schemas["NotesBody"]["properties"]["notes"]["maxLength"] == 100_000
    assert schemas["NotesBody"]["properties"]["notes"]["type"] == ["string", "null"]
    assert schemas["DialBody"]["required"] == ["number"]
    assert schemas["CallbackBody"]["properties"]["list"]["type"] == ["string", "null"]
    assert "given" not in schemas["AvailabilityBody"]["properties"]


def _response(method: str, path: str, status: int, body: bytes, content_type: str) -> Any:
    import requests

    reply = requests.Response()
    reply.status_code, reply._content = status, body
    reply.headers["Content-Type"] = content_type
    reply.request = requests.Request(method, f"http://host/api/{path}").prepare()
    return reply


def test_the_e2e_contract_check_fails_on_a_wrong_body_or_an_undocumented_status() -> None:
    from tests.fixtures.openapi_contract import OpenApiContract

    contract = OpenApiContract(lambda: document("1.0"))
    contract.check(_response("GET", "me/calls/current", 200, b'{"call": null}', JSON))
    contract.check(_response("POST", "callbacks", 401, b"", ""))  # the host's empty 401
    contract.check(_response("GET", "nowhere", 404, b"", ""))  # not an operation of ours
    assert contract.checked == 2
    with pytest.raises(AssertionError, match="call"):
        contract.check(_response("GET", "me/calls/current", 200, b'{"call": {"x": 1}}', JSON))
    with pytest.raises(AssertionError, match="does not list"):
        contract.check(_response("GET", "me/calls/current", 418, b"{}", JSON))
    with pytest.raises(AssertionError, match="Content-Type"):
        contract.check(_response("GET", "me/calls/current", 200, b"{}", "text/plain"))
    problem = b'{"type": "about:blank", "title": "x", "status": 409, "detail": "busy"}'
    contract.check(_response("PUT", "me/session/abc", 409, problem, "application/problem+json"))
