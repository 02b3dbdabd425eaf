"""Customer identification by phone number and the screen pop it leads to (§2.1.1, §2.1.2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CustomerEntity(StrEnum):
    CONTACT = "contact"
    ACCOUNT = "account"
    LEAD = "lead"


@dataclass(frozen=True)
class CustomerRef:
    """A D365 record that may be the caller."""

    entity: CustomerEntity
    id: str
    name: str

    def to_json(self) -> dict[str, str]:
        return {"entity": self.entity.value, "id": self.id, "name": self.name}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> CustomerRef:
        return cls(CustomerEntity(data["entity"]), data["id"], data.get("name", ""))


@dataclass(frozen=True)
class DirectoryEntry:
    """A row of the web phone's contact directory: a D365 record or a colleague."""

    kind: str  # contact, account, lead, colleague
    id: str
    name: str
    phone: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "phone": self.phone}


class Identification(StrEnum):
    SINGLE = "single"
    SEVERAL = "several"
    NONE = "none"


class ScreenPop(StrEnum):
    """What the panel does: open the record, show the candidates, or nothing."""

    OPEN_RECORD = "openRecord"
    SHOW_CANDIDATES = "showCandidates"
    NOTHING = "nothing"


def identification(candidates: tuple[CustomerRef, ...]) -> Identification:
    if len(candidates) == 1:
        return Identification.SINGLE
    return Identification.SEVERAL if candidates else Identification.NONE


def customer_of_record(
    candidates: tuple[CustomerRef, ...], picked: CustomerRef | None
) -> CustomerRef | None:
    """The customer the activity is about: the picked one, else the single match, else none."""
    if picked is not None:
        return picked
    return candidates[0] if len(candidates) == 1 else None


def screen_pop(candidates: tuple[CustomerRef, ...], picked: CustomerRef | None) -> ScreenPop:
    if customer_of_record(candidates, picked) is not None:
        return ScreenPop.OPEN_RECORD
    return ScreenPop.SHOW_CANDIDATES if candidates else ScreenPop.NOTHING
