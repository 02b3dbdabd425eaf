"""Who may play a call's recording: the one place that decides (the link written to D365 opens
a panel page that fetches the audio with the viewer's own token)."""

from __future__ import annotations

from typing import Protocol

from shared.domain.calls import Call, OfferOutcome
from shared.domain.directory import Directory
from shared.errors import NotAllowed
from shared.services.access import Principal


class ActivityReadCheck(Protocol):
    def may_read_phone_call(self, activity_id: str, viewer_object_id: str) -> bool:
        """True if Dataverse lets this Entra user read the Phone Call (CallerObjectId)."""
        ...


class RecordingAccess:
    def __init__(
        self,
        directory: Directory,
        dataverse: ActivityReadCheck,
        *,
        agent_role: str,
        supervisor_role: str,
    ) -> None:
        self.directory, self.dataverse = directory, dataverse
        self.agent_role, self.supervisor_role = agent_role, supervisor_role

    def check(self, viewer: Principal, call: Call) -> None:
        """Allowed: supervisors, the call's own agents, and anyone Dataverse lets read the
        call's Phone Call activity as themselves. Everyone else: NotAllowed (403)."""
        if self.supervisor_role in viewer.roles:
            return
        agent = self.directory.agent_by_object_id(viewer.oid)
        if agent is not None and self.agent_role in viewer.roles and agent.id in call_agents(call):
            return
        if call.activity_id and self.dataverse.may_read_phone_call(call.activity_id, viewer.oid):
            return
        raise NotAllowed("you may not listen to this call's recording")


def call_agents(call: Call) -> set[str]:
    """The agents who were in the call: who answered (or dialled, or was dialled) and who took a
    transfer; not those who were only offered it."""
    agents = {o.agent_id for o in call.offers if o.agent_id and o.outcome is OfferOutcome.ANSWERED}
    for agent_id in (call.answered_by, call.agent_id, call.serving_agent_id):
        if agent_id:
            agents.add(agent_id)
    if call.consult is not None and call.consult.agent_id:
        agents.add(call.consult.agent_id)
    return agents
