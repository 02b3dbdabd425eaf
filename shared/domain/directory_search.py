"""The contact directory's search (§1.3): a query read as a name or as the start of a number,
the prefixes a number is looked for by, and the OData `$filter` of each searched table."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared.domain.customers import NAME_COLUMNS, PHONE_COLUMNS, DirectoryEntry, PhoneMatch
from shared.domain.directory import Agent

MIN_QUERY, MAX_QUERY = 2, 100  # characters
MIN_DIGITS = 3  # fewer digits than this is a name ("3M"), not a number
_NUMBER_LIKE = re.compile(r"^\+?[0-9 ()./-]+$")
_LIKE_SPECIAL = re.compile(r"[%_\[]")  # Dataverse string filters are T-SQL LIKE patterns


class QueryProblem(ValueError):
    """The query cannot be searched (too short, too long); the message says why."""


@dataclass(frozen=True)
class DirectoryQuery:
    """What to look for: `text` in names, and, when the text looks like a number, every phone
    column starting with one of `prefixes` (its E.164 and national forms, compact and as
    `phonenumbers` formats them while typing, and the text as typed)."""

    text: str
    prefixes: tuple[str, ...] = ()

    @property
    def is_number(self) -> bool:
        return bool(self.prefixes)

    def starts(self, value: str | None) -> bool:
        """Whether one of the prefixes starts `value` (case-insensitively, as Dataverse)."""
        wanted = tuple(p.casefold() for p in self.prefixes)
        return bool(wanted) and isinstance(value, str) and value.casefold().startswith(wanted)

    def match(self, entity: str, row: Mapping[str, Any]) -> PhoneMatch | None:
        """The first phone column of `row` (a record of `entity`) that one of the prefixes
        starts (case-insensitively, as Dataverse compares), or None."""
        for column in PHONE_COLUMNS[entity]:
            value = row.get(column.name)
            if self.starts(value):
                return PhoneMatch(str(value), column.name, column.label)
        return None


def directory_query(raw: str, default_region: str) -> DirectoryQuery:
    """The query of `raw` (what the agent typed); QueryProblem if it cannot be searched.

    A number typed without a country code is read in `default_region` (PHONE_DEFAULT_REGION)."""
    text = " ".join(raw.split())
    if len(text) < MIN_QUERY:
        raise QueryProblem(f"at least {MIN_QUERY} characters")
    if len(text) > MAX_QUERY:
        raise QueryProblem(f"at most {MAX_QUERY} characters")
    return DirectoryQuery(text, number_prefixes(text, default_region))


def number_prefixes(text: str, default_region: str) -> tuple[str, ...]:
    """The prefixes a number-like `text` is searched by (none: `text` is not a number).

    `+358 40 12`, `00358 4012` and, in FI, `040 12` all give `+3584012`, `04012`,
    `+358 40 12` and `040 12` (plus the text as typed)."""
    if not _NUMBER_LIKE.match(text):
        return ()
    digits = re.sub(r"\D", "", text)
    if len(digits) < MIN_DIGITS:
        return ()
    region = default_region.upper()
    country, lead, international = _region_facts(region)
    e164: str | None = None
    national: str | None = None
    intl_digits = digits if text.startswith("+") else None
    if intl_digits is None:
        for prefix in international:
            if digits.startswith(prefix):
                intl_digits = digits[len(prefix) :]
                break
    if intl_digits is not None:
        e164 = "+" + intl_digits if intl_digits else None
        if country and intl_digits.startswith(country) and len(intl_digits) > len(country):
            national = lead + intl_digits[len(country) :]
    elif lead and digits.startswith(lead):
        national, e164 = digits, "+" + country + digits[len(lead) :] if country else None
    elif not lead and country:
        national, e164 = digits, "+" + country + digits
    else:  # no national prefix where the region writes one: an international number sans +
        e164 = "+" + digits
    forms = [e164, national, _as_typed(e164, region), _as_typed(national, region), text]
    return tuple(dict.fromkeys(f for f in forms if f and any(c.isdigit() for c in f)))


@cache
def _region_facts(region: str) -> tuple[str, str, tuple[str, ...]]:
    """(country calling code, the national prefix written in national format, international
    call prefixes) of `region`; ("", "", ("00",)) for a region phonenumbers does not know."""
    import phonenumbers  # imported on first use: not paid for at cold start

    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    example = phonenumbers.example_number(region)
    if metadata is None or example is None:
        return "", "", ("00",)
    shown = re.sub(
        r"\D", "", phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    )
    significant = phonenumbers.national_significant_number(example)
    lead = shown[: len(shown) - len(significant)] if shown.endswith(significant) else ""
    pattern = metadata.international_prefix or ""
    international = tuple(p for p in ("011", "00") if pattern and re.fullmatch(pattern, p))
    return str(example.country_code), lead, international or ("00",)


def _as_typed(number: str | None, region: str) -> str | None:
    """`number` as phonenumbers formats it while it is typed (`+358 40 12`, `040 12`)."""
    if not number:
        return None
    import phonenumbers

    formatter = phonenumbers.AsYouTypeFormatter(region)
    shown = ""
    for ch in number:
        shown = formatter.input_digit(ch)
    return shown.strip() or None


# ---------------------------------------------------------------------- the OData filters


def odata_literal(value: str) -> str:
    """A quoted OData string literal ('' for a quote)."""
    return "'" + value.replace("'", "''") + "'"


def like_literal(value: str) -> str:
    """`value` matched literally by contains/startswith: Dataverse reads `%`, `_` and `[` in
    them as T-SQL LIKE wildcards, so each is put in brackets (`[%]`)."""
    return _LIKE_SPECIAL.sub(lambda m: f"[{m.group()}]", value)


def search_filter(entity: str, query: DirectoryQuery) -> str:
    """The `$filter` of `entity`'s records for `query`: its name contains the text, or (a
    number) a phone column starts with one of the prefixes. Active D365 users only."""
    name = f"contains({NAME_COLUMNS[entity]},{odata_literal(like_literal(query.text))})"
    numbers = [
        f"startswith({column.name},{odata_literal(like_literal(prefix))})"
        for column in PHONE_COLUMNS[entity]
        for prefix in query.prefixes
    ]
    condition = " or ".join((name, *numbers))
    if entity == "systemuser":  # no disabled users, no application (non-interactive) users
        return f"isdisabled eq false and applicationid eq null and ({condition})"
    return condition


def selected_columns(entity: str) -> tuple[str, ...]:
    """What a search reads of each record: its id, name and every phone column."""
    return (f"{entity}id", NAME_COLUMNS[entity], *(c.name for c in PHONE_COLUMNS[entity]))


# ---------------------------------------------------------------------- colleagues


def with_colleagues(
    found: list[DirectoryEntry], agents: tuple[Agent, ...], query: DirectoryQuery
) -> list[DirectoryEntry]:
    """`found` (D365 records) with the agents the query finds as colleagues: by name, by their
    own numbers (AGENTS `directNumbers`, `phoneNumber`), or through their D365 user record
    (which then is shown once, as the colleague: a colleague is reached on the web phone)."""
    by_user = {a.system_user_id.lower(): a for a in agents}
    through_d365: dict[str, PhoneMatch | None] = {}
    records: list[DirectoryEntry] = []
    for entry in found:
        agent = by_user.get(entry.id.lower()) if entry.kind == "systemuser" else None
        if agent is None:
            records.append(entry)
        else:
            through_d365[agent.id] = entry.matched
    lowered = query.text.casefold()
    colleagues = []
    for agent in agents:
        own = [("directNumbers", "direct", n) for n in agent.direct_numbers]
        if agent.phone_number:
            own.append(("phoneNumber", "phone", agent.phone_number))
        matched = next(
            (PhoneMatch(n, column, label) for column, label, n in own if query.starts(n)), None
        )
        matched = matched or through_d365.get(agent.id)
        if (
            matched is None
            and agent.id not in through_d365
            and lowered not in agent.name.casefold()
        ):
            continue
        phone = matched.number if matched else (own[0][2] if own else None)
        colleagues.append(DirectoryEntry("colleague", agent.id, agent.name, phone, matched))
    return records + colleagues
