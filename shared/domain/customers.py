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
class PhoneColumn:
    """A phone column of a D365 table: its logical name, what the panel calls it, and whether
    a caller from this number is the record itself (identification; an assistant's or a
    manager's line is searched in the directory but identifies nobody)."""

    name: str
    label: str
    identifies: bool = True


# Every phone column of the tables the directory searches, in the order a match is reported
# (Dataverse column reference: contact, account, lead, systemuser). Numbers are free text in
# D365, stored in E.164 (§1.1 asks for it) or national form.
PHONE_COLUMNS: dict[str, tuple[PhoneColumn, ...]] = {
    "contact": (
        PhoneColumn("telephone1", "business"),
        PhoneColumn("telephone2", "home"),
        PhoneColumn("telephone3", "other"),
        PhoneColumn("mobilephone", "mobile"),
        PhoneColumn("business2", "business 2"),
        PhoneColumn("home2", "home 2"),
        PhoneColumn("pager", "pager", identifies=False),
        PhoneColumn("callback", "callback", identifies=False),
        PhoneColumn("company", "company", identifies=False),
        PhoneColumn("assistantphone", "assistant", identifies=False),
        PhoneColumn("managerphone", "manager", identifies=False),
    ),
    "account": (
        PhoneColumn("telephone1", "main"),
        PhoneColumn("telephone2", "other"),
        PhoneColumn("telephone3", "telephone 3"),
    ),
    "lead": (
        PhoneColumn("telephone1", "business"),
        PhoneColumn("telephone2", "home"),
        PhoneColumn("telephone3", "other"),
        PhoneColumn("mobilephone", "mobile"),
    ),
    "systemuser": (
        PhoneColumn("address1_telephone1", "main"),
        PhoneColumn("mobilephone", "mobile"),
        PhoneColumn("homephone", "home"),
        PhoneColumn("address1_telephone2", "other"),
        PhoneColumn("address1_telephone3", "telephone 3"),
    ),
}
NAME_COLUMNS = {
    "contact": "fullname",
    "account": "name",
    "lead": "fullname",
    "systemuser": "fullname",
}
ENTITY_SETS = {
    "contact": "contacts",
    "account": "accounts",
    "lead": "leads",
    "systemuser": "systemusers",
}


def identifying_columns(entity: CustomerEntity) -> tuple[str, ...]:
    """The columns a caller's number is looked up in (§2.1.1): the record's own numbers."""
    return tuple(c.name for c in PHONE_COLUMNS[entity.value] if c.identifies)


@dataclass(frozen=True)
class PhoneMatch:
    """The stored number a directory search matched, and the column holding it."""

    number: str
    column: str
    label: str


@dataclass(frozen=True)
class DirectoryEntry:
    """A row of the web phone's contact directory: a D365 record (contact, account, lead, a
    D365 user: systemuser) or a colleague (an agent); `phone` is the number to call (the
    matched one when a number matched), `matched` what a number search matched."""

    kind: str  # contact, account, lead, systemuser, colleague
    id: str
    name: str
    phone: str | None
    matched: PhoneMatch | None = None


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
