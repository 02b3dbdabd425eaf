"""ACS Identity's state: communication users and their access tokens, as the
azure-communication-identity client calls the service (`/identities`, `:issueAccessToken`,
`:revokeAccessTokens`, api-version 2023-10-01), HMAC-authenticated like the rest of the
resource. The tokens it issues are what the browser device API accepts (`user_of`)."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import time
import uuid
from typing import Any

import jwt
from werkzeug.wrappers import Request, Response

from emulators.common.server import json_response

API_VERSIONS = frozenset({"2021-03-07", "2022-06-01", "2022-10-01", "2023-10-01"})
SCOPES = frozenset({"chat", "voip", "chat.join", "chat.join.limited", "voip.join"})
# The service's bounds for expiresInMinutes; 24 hours when not given.
MIN_MINUTES, MAX_MINUTES, DEFAULT_MINUTES = 60, 1440, 1440
IDENTITY_PATH = re.compile(
    r"/identities(?:/(?P<id>[^/]+))?(?:/:(?P<action>issueAccessToken|revokeAccessTokens))?\Z"
)


def _error(status: int, code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status)


class IdentityService:
    """Identities of one ACS resource. Identities outlive `reset()` of the call world."""

    def __init__(self, resource_id: str) -> None:
        self.resource_id = resource_id
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._identities: set[str] = set()
        self._tokens: dict[str, str] = {}  # jti of each live token -> its identity

    # ---- in-process ---------------------------------------------------------------------------

    def register(self, raw_id: str) -> None:
        """An identity created earlier (e.g. the agents' acsUserId in AGENTS)."""
        if not raw_id.startswith("8:acs:"):
            raise ValueError(f"not an ACS communication user id: {raw_id!r}")
        with self._lock:
            self._identities.add(raw_id)

    def identities(self) -> list[str]:
        with self._lock:
            return list(self._identities)

    def issue(
        self, raw_id: str, scopes: list[str], minutes: int = DEFAULT_MINUTES
    ) -> dict[str, Any]:
        now = time.time()
        expires = int(now) + minutes * 60
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "skypeid": raw_id.removeprefix("8:"),
            "scp": 1792,
            "csi": str(int(now)),
            "exp": expires,
            "rgn": "emea",
            "acsScope": ",".join(scopes),
            "resourceId": self.resource_id,
            "resourceLocation": "europe",
            "iat": int(now),
            "jti": jti,
        }
        with self._lock:
            self._tokens[jti] = raw_id
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        # The service's shape: seven fractional digits and an offset, e.g. ...39.3244584+00:00
        expires_on = dt.datetime.fromtimestamp(expires, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.0000000+00:00"
        )
        return {"token": token, "expiresOn": expires_on}

    def user_of(self, token: str, scope: str = "voip") -> str | None:
        """The communication user a valid, unrevoked token with `scope` belongs to, or None."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        raw_id = "8:" + str(claims.get("skypeid", ""))
        with self._lock:
            live = self._tokens.get(str(claims.get("jti"))) == raw_id  # not revoked or deleted
        if not live:
            return None
        if scope not in str(claims.get("acsScope", "")).split(","):
            return None
        return raw_id

    # ---- HTTP ---------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """One REST call; the caller has authenticated it (HMAC) already."""
        found = IDENTITY_PATH.match(request.path)
        if found is None:
            return _error(404, "NotFound", f"No resource at '{request.path}'.")
        api_version = request.args.get("api-version")
        if not api_version:
            return _error(
                400, "MissingApiVersionParameter", "The api-version query parameter is required."
            )
        if api_version not in API_VERSIONS:
            return _error(
                400,
                "UnsupportedApiVersion",
                f"The HTTP resource that matches the request URI '{request.url}' does not "
                f"support the API version '{api_version}'.",
            )
        raw_id, action = found["id"], found["action"]
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            return _error(400, "BadRequest", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "The request body must be a JSON object.")
        if raw_id is None and action is None and request.method == "POST":
            return self._create(body)
        if raw_id is None:
            return _error(405, "MethodNotAllowed", request.method)
        with self._lock:
            known = raw_id in self._identities
        if not known:
            return _error(404, "IdentityNotFound", f"Identity '{raw_id}' was not found.")
        if action is None and request.method == "DELETE":
            self._revoke(raw_id)
            with self._lock:
                self._identities.discard(raw_id)
            return Response(status=204)
        if action == "revokeAccessTokens" and request.method == "POST":
            self._revoke(raw_id)
            return Response(status=204)
        if action == "issueAccessToken" and request.method == "POST":
            scopes, problem = self._scopes(body.get("scopes"))
            minutes, problem = (0, problem) if problem else self._minutes(body)
            if problem is not None:
                return problem
            return json_response(self.issue(raw_id, scopes, minutes))
        return _error(405, "MethodNotAllowed", request.method)

    def _revoke(self, raw_id: str) -> None:
        with self._lock:
            for jti in [j for j, owner in self._tokens.items() if owner == raw_id]:
                del self._tokens[jti]

    def _create(self, body: dict[str, Any]) -> Response:
        raw_id = f"8:acs:{self.resource_id}_{uuid.uuid4()}"
        answer: dict[str, Any] = {"identity": {"id": raw_id}}
        if body.get("createTokenWithScopes"):
            scopes, problem = self._scopes(body["createTokenWithScopes"])
            minutes, problem = (0, problem) if problem else self._minutes(body)
            if problem is not None:
                return problem
            with self._lock:
                self._identities.add(raw_id)
            answer["accessToken"] = self.issue(raw_id, scopes, minutes)
        else:
            with self._lock:
                self._identities.add(raw_id)
        return json_response(answer, 201)

    @staticmethod
    def _scopes(value: Any) -> tuple[list[str], Response | None]:
        if not isinstance(value, list) or not value:
            return [], _error(400, "ValidationError", "At least one scope is required.")
        unknown = [s for s in value if s not in SCOPES]
        if unknown:
            return [], _error(400, "ValidationError", f"Invalid scopes: {unknown}.")
        return [str(s) for s in value], None

    @staticmethod
    def _minutes(body: dict[str, Any]) -> tuple[int, Response | None]:
        minutes = body.get("expiresInMinutes")
        if minutes is None:
            return DEFAULT_MINUTES, None
        if not isinstance(minutes, int) or not MIN_MINUTES <= minutes <= MAX_MINUTES:
            return 0, _error(
                400,
                "ValidationError",
                f"The expiresInMinutes must be between {MIN_MINUTES} and {MAX_MINUTES} minutes.",
            )
        return minutes, None
