"""Read models of the world for the control API: calls, ringing devices, recordings, config."""

from __future__ import annotations

from typing import Any

from emulators.acs.errors import AcsError
from emulators.acs.world.core import WorldCore


class Views(WorldCore):
    """JSON views of the state, each read under the lock."""

    def call_json(self, cid: str) -> dict[str, Any]:
        with self._lock:
            call = self.calls.get(cid)
            if call is None:
                raise AcsError(404, "NotFound", f"No call '{cid}'.")
            recognize = call.recognize
            return {
                "callConnectionId": call.call_connection_id,
                "serverCallId": call.server_call_id,
                "correlationId": call.correlation_id,
                "direction": call.direction,
                "state": call.state,
                "callbackUri": call.callback_uri,
                "operationContext": call.operation_context,
                "source": call.source,
                "targets": call.targets,
                "customer": call.customer_raw,
                "participants": [
                    {"rawId": raw, "isMuted": p.is_muted, "isOnHold": p.is_on_hold}
                    for raw, p in call.participants.items()
                ],
                "ringing": [
                    i.to_json() for i in self.invitations.values() if i.call_connection_id == cid
                ],
                "recognizing": None
                if recognize is None
                else {
                    "target": recognize.target_raw,
                    "tones": list(recognize.tones),
                    "maxTones": recognize.max_tones,
                    "stopTones": sorted(recognize.stop_tones),
                    "operationContext": recognize.operation_context,
                    "prompts": list(recognize.prompts),
                },
                "sentTones": list(call.sent_tones),
                "pressedTones": list(call.pressed_tones),
                "plays": list(call.plays),
                "recordings": list(call.recording_ids),
                "createdAt": call.created_at,
                "connectedAt": call.connected_at,
                "endedAt": call.ended_at,
                "endReason": call.end_reason,
            }

    def state_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "config": {
                    "acsNumbers": list(self.config.acs_numbers),
                    "incomingCallWebhook": self.config.incoming_call_webhook,
                    "recordingWebhook": self.config.recording_webhook,
                    "ringTimeoutSeconds": self.config.ring_timeout_seconds,
                    "allowHttpCallbacks": self.config.allow_http_callbacks,
                    "recordingContentRequiresAuth": self.config.recording_content_requires_auth,
                    "appIdentity": self.app_identity,
                },
                "incomingCalls": [i.to_json() for i in self.incoming.values()],
                "calls": [self.call_json(cid) for cid in self.calls],
                "ringing": [i.to_json() for i in self.invitations.values()],
                "recordings": [r.to_json() for r in self.recordings.values()],
                "faults": [f.to_json() for f in self.faults if f.remaining > 0],
            }

    def recordings_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self.recordings.values()]

    def ringing_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [i.to_json() for i in self.invitations.values()]
