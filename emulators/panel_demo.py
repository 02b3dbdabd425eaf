"""What `make run` sets up for the web phone panel: the SPA app registration, the sign-in users."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emulators.entra.authorize import User

if TYPE_CHECKING:
    from emulators.entra import EntraEmulator
    from shared.config import Settings

# The demo supervisor (Phone.Supervisor), next to the agents of AGENTS.
SUPERVISOR_UPN = "sam@contoso.local"
SUPERVISOR_OID = str(uuid.uuid5(uuid.NAMESPACE_URL, "d365-phone-demo:supervisor:sam"))
# The panel's pages that MSAL.js may use as its redirect URI.
PANEL_PAGES = ("", "index.html", "recording.html", "redirect.html", "wallboard.html")


@dataclass(frozen=True)
class PanelSignIn:
    """What was registered: the panel's URL, its client id and the users who can sign in."""

    panel_url: str
    client_id: str
    users: tuple[User, ...]


def panel_redirect_uris(public_base_url: str) -> list[str]:
    return [f"{public_base_url}/api/panel/{page}" for page in PANEL_PAGES]


def sign_in_users(settings: Settings) -> list[User]:
    """Every agent as `<id>@contoso.local` with the agent role, and the supervisor Sam."""
    users = [
        User(agent.entra_object_id, f"{agent.id}@contoso.local", agent.name, (settings.agent_role,))
        for agent in settings.agents
    ]
    users.append(
        User(SUPERVISOR_OID, SUPERVISOR_UPN, "Sam Supervisor", (settings.supervisor_role,))
    )
    return users


def seed_panel_sign_in(
    entra: EntraEmulator, settings: Settings, public_base_url: str
) -> PanelSignIn:
    """Register the agent API (API_AUDIENCE, defining the agent and supervisor roles), the
    panel's SPA client (PANEL_CLIENT_ID) and the users (idempotent)."""
    entra.register_resource(settings.api_audience, [settings.agent_role, settings.supervisor_role])
    users = sign_in_users(settings)
    for user in users:
        entra.sign_in.add_user(user)
    if settings.panel_client_id:
        entra.sign_in.register_spa(settings.panel_client_id, panel_redirect_uris(public_base_url))
    return PanelSignIn(f"{public_base_url}/api/panel/", settings.panel_client_id, tuple(users))
