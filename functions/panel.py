"""GET /api/panel/... (anonymous): the web phone panel's built files and its config.json."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse

import azure.functions as func

from functions.invocation import NO_STORE, Auth, endpoint, json_response
from shared.errors import NotFound

if TYPE_CHECKING:
    from pathlib import Path

bp = func.Blueprint()

TYPES = {
    ".html": "text/html",  # the worker adds "; charset=utf-8" to text/* types
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain",
    ".png": "image/png",
}
HEADERS = {
    # Not hashed file names: a browser asks again each time (cheap: the files are small).
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


@endpoint(
    bp,
    "GET",
    "panel/config.json",
    auth=Auth.PUBLIC,
    headers=NO_STORE,
    responses={200: "application/json"},
)
def panel_config(req: func.HttpRequest) -> func.HttpResponse:
    """The web phone panel's settings: the API base, MSAL.js sign-in, the device to use

    `{"apiBase", "d365Url", "auth": {"clientId", "authority", "knownAuthorities", "scopes",
    "redirectUri"}, "device": {"kind": "acs"} | {"kind": "emulator", "url"}}`, from
    PUBLIC_BASE_URL, ENTRA_*, API_AUDIENCE, PANEL_CLIENT_ID and PANEL_DEVICE_EMULATOR_URL."""
    from shared import composition

    s = composition.settings()
    authority_host = s.entra_authority_host.rstrip("/")
    body = {
        "apiBase": f"{s.public_base_url}/api",
        "d365Url": s.dataverse_url,
        "auth": {
            "clientId": s.panel_client_id,
            "authority": f"{authority_host}/{s.entra_tenant_id}",
            "knownAuthorities": [urlparse(authority_host).netloc],
            # The API's delegated permissions as consented (Phone.Use, access_as_user, ...).
            "scopes": [f"{s.api_audience}/.default"],
            "redirectUri": f"{s.public_base_url}/api/panel/",
        },
        "device": (
            {"kind": "emulator", "url": s.panel_device_emulator_url}
            if s.panel_device_emulator_url
            else {"kind": "acs"}
        ),
    }
    return json_response(body, headers=NO_STORE)


@endpoint(
    bp,
    "GET",
    "panel/{*path}",
    auth=Auth.PUBLIC,
    errors=(404,),
    responses={200: "text/*, image/*, application/json", 308: None},
)
def panel_files(req: func.HttpRequest) -> func.HttpResponse:
    """The web phone panel's files

    `/api/panel/` is the CIF provider's landing page (index.html); `recording.html?callId=` is
    the recording link written to D365; also the scripts, styles and `redirect.html` (the
    sign-in popup's return page). Files under panel/dist only; `/api/panel` redirects to
    `/api/panel/`."""
    path = req.route_params.get("path") or ""
    if not path and not urlparse(req.url).path.endswith("/"):
        # The page's relative links need the trailing slash.
        return func.HttpResponse(status_code=308, headers={"Location": "/api/panel/"})
    import mimetypes  # only when a file is served, not at cold start

    file = _file(path or "index.html")
    return func.HttpResponse(
        file.read_bytes(),
        headers=HEADERS,
        mimetype=TYPES.get(file.suffix)
        or mimetypes.guess_type(file.name)[0]
        or "application/octet-stream",
    )


def _file(relative: str) -> Path:
    """The built file at `relative`, never outside panel/dist."""
    from pathlib import Path  # only when a file is served, not at cold start

    # Built by `make setup` (npm ci + panel/build.mjs); deployed with the app.
    root = (Path(__file__).resolve().parent.parent / "panel" / "dist").resolve()
    try:
        candidate = (root / relative).resolve()
        found = root in candidate.parents and candidate.is_file()
    except (ValueError, OSError):  # a NUL byte, a name too long: no such file
        found = False
    if not found:
        if not root.is_dir():
            raise NotFound("the panel is not built (make setup builds it)")
        raise NotFound(f"no panel file {relative!r}")
    return candidate
