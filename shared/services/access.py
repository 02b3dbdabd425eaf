"""Who is calling: the agent API (a valid Entra token, the right app role, a configured agent)
and ACS's mid-call callbacks (the per-call URL token and the ACS-signed JWT)."""

from __future__ import annotations

from typing import Protocol

from shared.domain.directory import Agent, Directory
from shared.errors import NotAllowed, NotAuthenticated


class Principal(Protocol):
    @property
    def oid(self) -> str: ...

    @property
    def roles(self) -> tuple[str, ...]: ...


class TokenValidatorPort(Protocol):
    def validate(self, bearer_token: str | None) -> Principal: ...


class Access:
    def __init__(
        self,
        validator: TokenValidatorPort,
        directory: Directory,
        *,
        agent_role: str,
        supervisor_role: str,
    ) -> None:
        self.validator, self.directory = validator, directory
        self.agent_role, self.supervisor_role = agent_role, supervisor_role

    def principal(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise NotAuthenticated("an Entra ID bearer token is required")
        return self.validator.validate(authorization)

    def agent(self, authorization: str | None) -> Agent:
        """The configured agent behind a token with the agent (or supervisor) role."""
        principal = self.principal(authorization)
        if self.agent_role not in principal.roles and self.supervisor_role not in principal.roles:
            raise NotAllowed(f"the token lacks the {self.agent_role} role")
        agent = self.directory.agent_by_object_id(principal.oid)
        if agent is None:
            raise NotAllowed("this user is not configured as a phone user (AGENTS)")
        return agent

    def supervisor(self, authorization: str | None) -> Principal:
        """A token with the supervisor role (pools, members, callbacks, dashboard)."""
        principal = self.principal(authorization)
        if self.supervisor_role not in principal.roles:
            raise NotAllowed(f"the token lacks the {self.supervisor_role} role")
        return principal

    def staff(self, authorization: str | None) -> Principal:
        """Any phone user or supervisor (e.g. to fetch a recording)."""
        principal = self.principal(authorization)
        if not {self.agent_role, self.supervisor_role} & set(principal.roles):
            raise NotAllowed(
                f"the token lacks the {self.agent_role} or {self.supervisor_role} role"
            )
        return principal


class CallTokens(Protocol):
    def valid(self, call_id: str, token: str) -> bool: ...


class AcsCallbackAccess:
    """The one check of an ACS mid-call callback: the per-call token our callback URL carries
    (so a callback names only its own call) and the JWT ACS signs every callback with."""

    def __init__(self, call_tokens: CallTokens, validator: TokenValidatorPort) -> None:
        self.call_tokens, self.validator = call_tokens, validator

    def check(self, call_id: str, url_token: str, authorization: str | None) -> None:
        if not self.call_tokens.valid(call_id, url_token):
            raise NotAuthenticated("the callback URL's call token is missing or wrong")
        self.validator.validate(authorization)
