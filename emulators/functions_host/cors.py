"""CORS as Core Tools does it: `local.settings.json` `Host.CORS` (comma-separated origins, `*` for
any) and `Host.CORSCredentials`, applied by ASP.NET Core's CORS middleware before any function
runs (`WithOrigins(...).AllowAnyHeader().AllowAnyMethod()`, `AllowCredentials()` when asked).
In Azure the same is the site's `siteConfig.cors`; the app itself does no CORS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from .config import HostConfigError


@dataclass(frozen=True)
class CorsPolicy:
    origins: frozenset[str]  # normalised: lower case, no trailing slash
    any_origin: bool
    credentials: bool

    @classmethod
    def from_host_section(cls, section: dict[str, Any]) -> CorsPolicy | None:
        raw = section.get("CORS")
        if raw is None or raw == "":
            return None  # no CORS middleware at all: a preflight reaches the routes (404)
        if not isinstance(raw, str):
            raise HostConfigError("local.settings.json: Host.CORS must be a comma-separated string")
        origins = [o.strip() for o in raw.split(",") if o.strip()]
        credentials = section.get("CORSCredentials", False)
        if not isinstance(credentials, bool):
            raise HostConfigError("local.settings.json: Host.CORSCredentials must be true or false")
        any_origin = "*" in origins
        if any_origin and credentials:
            # ASP.NET Core refuses this policy ("does not allow specifying a wildcard (any)
            # origin and credentials at the same time"), so the host does not start.
            raise HostConfigError(
                "local.settings.json: Host.CORS '*' cannot be combined with CORSCredentials: "
                "the CORS protocol does not allow a wildcard origin with credentials"
            )
        return cls(frozenset(_normalise(o) for o in origins if o != "*"), any_origin, credentials)

    def allows(self, origin: str) -> bool:
        return self.any_origin or _normalise(origin) in self.origins

    def preflight(self, request: Request) -> Response | None:
        """The answer to a CORS preflight (204, with the headers only for an allowed origin)."""
        origin = request.headers.get("Origin")
        asked_method = request.headers.get("Access-Control-Request-Method")
        if request.method != "OPTIONS" or not origin or not asked_method:
            return None
        response = Response(status=204)
        del response.headers["Content-Type"]
        if self.allows(origin):
            self._allow_origin(response, origin)
            response.headers["Access-Control-Allow-Methods"] = asked_method
            asked_headers = request.headers.get("Access-Control-Request-Headers")
            if asked_headers:
                response.headers["Access-Control-Allow-Headers"] = asked_headers
        return response

    def apply(self, request: Request, response: Response) -> None:
        """An actual cross-origin request: the allow headers when its origin is listed."""
        origin = request.headers.get("Origin")
        if origin and self.allows(origin):
            self._allow_origin(response, origin)

    def _allow_origin(self, response: Response, origin: str) -> None:
        if self.any_origin:
            response.headers["Access-Control-Allow-Origin"] = "*"
        else:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.add("Vary", "Origin")
        if self.credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"


def _normalise(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def load_cors(path: Path | None) -> CorsPolicy | None:
    """The CORS policy of a local.settings.json (its `Host` section), or None."""
    if path is None:
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # load_settings() reports an unreadable file already
    section = raw.get("Host") if isinstance(raw, dict) else None
    if section is None:
        return None
    if not isinstance(section, dict):
        raise HostConfigError("local.settings.json: 'Host' must be an object")
    return CorsPolicy.from_host_section(section)
