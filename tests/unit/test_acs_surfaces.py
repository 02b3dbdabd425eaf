"""The ACS emulator hands each request to the REST surface with the longest matching prefix."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from emulators.acs.emulator import SURFACES, AcsApp
from emulators.acs.surface import Surface


class Named:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def handle(self, request: Request) -> Response:
        return Response(self.prefix)


def answer(app: AcsApp, path: str) -> Response:
    return app.dispatch(Request(EnvironBuilder(path=path).get_environ()))


@pytest.mark.unit
def test_the_longest_prefix_wins_whatever_the_order() -> None:
    app = AcsApp()
    surfaces: list[Surface] = [Named("/_control/"), Named("/_control/identities/")]
    app.serve(surfaces)
    assert answer(app, "/_control/identities/x").get_data(as_text=True) == "/_control/identities/"
    assert answer(app, "/_control/state").get_data(as_text=True) == "/_control/"


@pytest.mark.unit
def test_a_path_no_surface_serves_is_the_service_404() -> None:
    app = AcsApp()
    app.serve([Named("/calling/")])
    response = answer(app, "/nowhere")
    assert response.status_code == 404
    assert json.loads(response.get_data()) == {
        "error": {"code": "NotFound", "message": "No resource at '/nowhere'."}
    }


@pytest.mark.unit
def test_the_emulator_serves_call_automation_recording_content_identity_and_control() -> None:
    assert {s.prefix for s in SURFACES} == {
        "/calling/",
        "/v1/objects/",
        "/_control/",
        "/identities",
        "/_control/identities",
        "/emails",
        "/_control/emails",
    }
