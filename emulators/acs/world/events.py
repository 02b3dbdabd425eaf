"""What each change of the world raises: mid-call CloudEvents to the callback URL and Event
Grid events to the webhooks, queued on the deliverer in the order they happened."""

from __future__ import annotations

import uuid
from typing import Any

from emulators.acs.delivery import Outgoing, now_iso
from emulators.acs.world.core import WorldCore
from emulators.acs.world.model import OK, Call


class Events(WorldCore):
    """Builds the events; `Deliverer` carries them."""

    def _emit(
        self,
        call: Call,
        name: str,
        extra: dict[str, Any] | None = None,
        *,
        operation_context: str | None = None,
        callback_uri: str | None = None,
        result: tuple[int, int, str] | None = OK,
    ) -> None:
        data: dict[str, Any] = {
            "callConnectionId": call.call_connection_id,
            "serverCallId": call.server_call_id,
            "correlationId": call.correlation_id,
            "operationContext": operation_context,
        }
        if result is not None:
            data["resultInformation"] = {
                "code": result[0],
                "subCode": result[1],
                "message": result[2],
            }
        data.update(extra or {})
        source = f"calling/callConnections/{call.call_connection_id}"
        event_id = str(uuid.uuid4())
        event_type = f"Microsoft.Communication.{name}"
        event: dict[str, Any] = {
            "id": event_id,
            "source": source,
            "type": event_type,
            "data": data,
            "time": now_iso(),
            "specversion": "1.0",
            "datacontenttype": "application/json",
            "subject": source,
        }
        self._deliverer.enqueue(
            Outgoing(
                kind="callback",
                event_type=event_type,
                event_id=event_id,
                url=callback_uri or call.callback_uri,
                body=[event],
                call_connection_id=call.call_connection_id,
            )
        )

    def _emit_grid(
        self,
        event_type: str,
        subject: str,
        data: dict[str, Any],
        url: str | None,
        subscription: str,
    ) -> str:
        event_id = str(uuid.uuid4())
        event = {
            "id": event_id,
            "topic": self.topic,
            "subject": subject,
            "data": data,
            "eventType": event_type,
            "dataVersion": "1.0",
            "metadataVersion": "1",
            "eventTime": now_iso(),
        }
        self._deliverer.enqueue(
            Outgoing(
                kind="eventgrid",
                event_type=event_type,
                event_id=event_id,
                url=url,
                body=[event],
                subscription=subscription,
            )
        )
        return event_id

    def _participants_updated(self, call: Call) -> None:
        call.sequence += 1
        self._emit(
            call,
            "ParticipantsUpdated",
            {
                "sequenceNumber": call.sequence,
                "participants": [p.to_json() for p in call.participants.values()],
            },
            operation_context=call.operation_context,
        )
