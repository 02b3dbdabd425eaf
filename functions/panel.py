"""GET /api/panel/... (anonymous): the web phone panel's built files and its config.json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import azure.functions as func

from functions.invocation import NO_STORE, Auth, endpoint
from shared.errors import NotFound

if TYPE_CHECKING:
    from shared.views import PanelConfig

bp = func.Blueprint()

# Built by `make setup` (npm ci + panel/build.mjs); deployed with the app.
DIST = Path(__file__).resolve().parent.parent / "panel" / "dist"
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


@endpoint(bp, "GET", "panel/config.json", auth=Auth.PUBLIC, headers=NO_STORE)
def panel_config(req: func.HttpRequest) -> PanelConfig:
    """The web phone panel's settings: API base, MSAL.js sign-in, the device to use"""
    from shared import composition
    from shared.views import PanelAuth, PanelConfig, PanelDevice

    s = composition.settings()
    authority_host = s.entra_authority_host.rstrip("/")
    return PanelConfig(
        api_base=f"{s.public_base_url}/api",
        d365_url=s.dataverse_url,
        auth=PanelAuth(
            client_id=s.panel_client_id,
            authority=f"{authority_host}/{s.entra_tenant_id}",
            known_authorities=(urlparse(authority_host).netloc,),
            scopes=(f"{s.api_audience}/Phone.Use",),
            redirect_uri=f"{s.public_base_url}/api/panel/",
        ),
        device=(
            PanelDevice(kind="emulator", url=s.panel_device_emulator_url)
            if s.panel_device_emulator_url
            else PanelDevice(kind="acs")
        ),
    )


@endpoint(
    bp,
    "GET",
    "panel/{*path}",
    auth=Auth.PUBLIC,
    errors=(404,),
    responses={200: "*/*", 308: None},
)
def panel_files(req: func.HttpRequest) -> func.HttpResponse:
    """The web phone panel's files

    `path` is a file under panel/dist, empty for index.html (/api/panel/ is the CIF landing
    page; recording.html?callId= plays a recording). /api/panel without the slash is a 308 to
    /api/panel/."""
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
    root = DIST.resolve()
    candidate = (root / relative).resolve()
    if root not in candidate.parents or not candidate.is_file():
        if not root.is_dir():
            raise NotFound("the panel is not built (make setup builds it)")
        raise NotFound(f"no panel file {relative!r}")
    return candidate
