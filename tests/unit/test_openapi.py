"""The OpenAPI document describes exactly the routes the app registers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from functions.openapi_spec import PATHS, document

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
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
    return {(path, method) for path, ops in PATHS.items() for method in ops}


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
