"""Communication identifiers as ACS writes them: raw ids and their wire models."""

from __future__ import annotations

import base64
from typing import Any

from emulators.acs.errors import AcsError


def normalise_raw_id(value: str) -> str:
    """`+358...` becomes `4:+358...`; raw ids (`4:`, `8:acs:`, ...) stay as they are."""
    value = value.strip()
    return f"4:{value}" if value.startswith("+") else value


def identifier(raw_or_number: str) -> dict[str, Any]:
    """The wire model of an identifier, with `kind` as the service returns it."""
    raw = normalise_raw_id(raw_or_number)
    if raw.startswith("4:"):
        return {"kind": "phoneNumber", "rawId": raw, "phoneNumber": {"value": raw[2:]}}
    if raw.startswith("8:acs:") or raw.startswith("8:spool:"):
        return {"kind": "communicationUser", "rawId": raw, "communicationUser": {"id": raw}}
    return {"kind": "unknown", "rawId": raw}


def raw_id_of(model: Any) -> str:
    if not isinstance(model, dict):
        raise AcsError(400, "BadRequest", "An identifier must be an object.")
    if model.get("rawId"):
        return normalise_raw_id(str(model["rawId"]))
    if isinstance(model.get("phoneNumber"), dict) and model["phoneNumber"].get("value"):
        return f"4:{model['phoneNumber']['value']}"
    if isinstance(model.get("communicationUser"), dict) and model["communicationUser"].get("id"):
        return str(model["communicationUser"]["id"])
    raise AcsError(400, "BadRequest", "The identifier has neither rawId nor a known kind.")


def is_phone(raw: str) -> bool:
    return raw.startswith("4:")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
