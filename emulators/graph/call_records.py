"""Teams call records as Graph shapes them: a `callRecord` with sessions and segments, and the
`pstnCallLogRow` the same PSTN call leaves in the PSTN call log (a different id: Graph says a
log row's id cannot be used to fetch a callRecord)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any
from urllib.parse import unquote


def graph_timestamp(moment: dt.datetime) -> str:
    """Graph's DateTimeOffset rendering: UTC, seven fractional digits, `Z`."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0Z"


def parse_graph_time(text: str) -> dt.datetime:
    """A DateTimeOffset as Graph reads it in a URL or a record: a date, or a time with a zone."""
    value = unquote(text.strip()).strip("'")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed.astimezone(dt.UTC)


def _user_endpoint(user_id: str, upn: str, name: str, tenant: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
        "userAgent": {
            "@odata.type": "#microsoft.graph.callRecords.clientUserAgent",
            "headerValue": "RTCC/7.0.0.0 UCWA/7.0.0.0 AndroidLync/6.25.0.27 (SM-G960U Android 10)",
            "platform": "android",
            "productFamily": "teams",
            "communicationServiceId": None,
            "azureADAppId": None,
        },
        "identity": {
            "@odata.type": "#microsoft.graph.communicationsIdentitySet",
            "user": {
                "id": user_id,
                "displayName": name,
                "tenantId": tenant,
                "userPrincipalName": upn,
            },
            "phone": None,
        },
    }


def _phone_endpoint(number: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
        "userAgent": {
            "@odata.type": "#microsoft.graph.callRecords.serviceUserAgent",
            "headerValue": "PSTN gateway",
            "role": "skypeForBusinessVoipPhone",
            "serviceId": None,
        },
        "identity": {
            "@odata.type": "#microsoft.graph.communicationsIdentitySet",
            "user": None,
            "phone": {"id": number, "displayName": None},
        },
    }


def teams_pstn_call(
    *,
    user_id: str,
    user_principal_name: str,
    direction: str,
    number: str,
    start: dt.datetime,
    ring_seconds: int,
    connected_seconds: int,
    teams_number: str = "+358101000300",
    display_name: str = "Teams User",
    tenant_id: str = "00000000-0000-4000-8000-0000000000aa",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One ended PSTN call of a Teams user: (callRecord, pstnCallLogRow).

    The record starts when the call started ringing and ends at hang-up; its media segment
    covers the connected part only (none when it was never answered)."""
    record_id = str(uuid.uuid4())
    answered = start + dt.timedelta(seconds=ring_seconds)
    end = answered + dt.timedelta(seconds=connected_seconds)
    user = _user_endpoint(user_id, user_principal_name, display_name, tenant_id)
    phone = _phone_endpoint(number)
    caller, callee = (phone, user) if direction == "inbound" else (user, phone)
    segments: list[dict[str, Any]] = []
    if connected_seconds > 0:
        segments.append(
            {
                "id": str(uuid.uuid4()),
                "startDateTime": graph_timestamp(answered),
                "endDateTime": graph_timestamp(end),
                "caller": caller,
                "callee": callee,
                "failureInfo": None,
                "media": [],
            }
        )
    # An unanswered call still has its session (the attempt), with no media segment.
    failure = None if segments else {"stage": "callSetup", "reason": "callee did not answer"}
    sessions = [
        {
            "id": str(uuid.uuid4()),
            "modalities": ["audio"],
            "startDateTime": graph_timestamp(start if not segments else answered),
            "endDateTime": graph_timestamp(end),
            "isTest": False,
            "caller": caller,
            "callee": callee,
            "failureInfo": failure,
            "segments": segments,
        }
    ]
    organizer = user["identity"]
    record: dict[str, Any] = {
        "id": record_id,
        "version": 1,
        "type": "peerToPeer",
        "modalities": ["audio"],
        "lastModifiedDateTime": graph_timestamp(end + dt.timedelta(seconds=30)),
        "startDateTime": graph_timestamp(start),
        "endDateTime": graph_timestamp(end),
        "joinWebUrl": None,
        "organizer": organizer,
        "participants": [organizer, phone["identity"]],
        "sessions": sessions,
    }
    inbound = direction == "inbound"
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "callId": f"{uuid.uuid4().int % 10**10}_{uuid.uuid4().int % 10**9}@52.114.7.12",
        "userId": user_id,
        "userPrincipalName": user_principal_name,
        "userDisplayName": display_name,
        "startDateTime": start,
        "endDateTime": end,
        "duration": connected_seconds,
        "callType": "user_in" if inbound else "user_out",
        "calleeNumber": teams_number if inbound else number,
        "callerNumber": number if inbound else teams_number,
    }
    return record, row


def expanded(record: dict[str, Any], expand: str) -> dict[str, Any]:
    """The record as `$expand` asks: sessions only when expanded, their segments likewise."""
    out = {k: v for k, v in record.items() if k != "sessions"}
    wanted = expand.replace(" ", "")
    if wanted.startswith("sessions"):
        with_segments = "$expand=segments" in wanted
        out["sessions"] = [
            s if with_segments else {k: v for k, v in s.items() if k != "segments"}
            for s in record.get("sessions", [])
        ]
        out["sessions@odata.context"] = "sessions"
    return out
