"""The directory's search: a query read as a name or the start of a number (E.164 and national
forms), the OData filters of each table, the matched number, colleagues."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.dataverse.query import FilterParser, evaluate
from emulators.dataverse.schema import base_tables
from shared.domain.customers import PHONE_COLUMNS, DirectoryEntry, PhoneMatch
from shared.domain.directory import Agent
from shared.domain.directory_search import (
    MAX_QUERY,
    DirectoryQuery,
    QueryProblem,
    directory_query,
    like_literal,
    number_prefixes,
    search_filter,
    with_colleagues,
)
from shared.errors import Unprocessable
from tests.unit.test_call_flow import World

if TYPE_CHECKING:
    from shared.services.agent_calls import AgentCalls

TABLES = base_tables()


def parsed(entity: str, query: DirectoryQuery) -> Any:
    """The filter as the Dataverse emulator reads it (its parser checks every column)."""
    t = TABLES[entity]
    edm = {name: column.edm for name, column in t.columns.items()}
    return FilterParser(search_filter(entity, query), t, edm.get).parse()


@pytest.mark.parametrize(
    "typed",
    ["040 12", "+358 40 12", "00358 4012", "+358-40-12", "(040) 12"],
)
def test_national_e164_and_00_forms_give_the_same_prefixes(typed: str) -> None:
    prefixes = number_prefixes(typed, "FI")
    assert {"+3584012", "04012", "+358 40 12", "040 12"} <= set(prefixes)


def test_national_forms_follow_the_region() -> None:
    assert {"+155512", "55512"} <= set(number_prefixes("(555) 12", "US"))  # no trunk 0
    assert {"+3906123", "06123"} <= set(number_prefixes("06 123", "IT"))  # the 0 is kept
    assert {"+4477009", "077009"} <= set(number_prefixes("07700 9", "GB"))
    # a foreign number has no national form here: only its E.164 (and as typed)
    assert "0" not in "".join(p[:1] for p in number_prefixes("+46 8 123", "FI"))


@pytest.mark.parametrize("text", ["Maija", "3M Finland", "12", "+", "++123", "040 12 ab"])
def test_names_and_short_numbers_are_searched_as_names(text: str) -> None:
    assert number_prefixes(text, "FI") == ()


def test_every_phone_column_of_every_table_is_searched_in_both_forms() -> None:
    query = directory_query("040 12", "FI")
    for entity, columns in PHONE_COLUMNS.items():
        condition = search_filter(entity, query)
        for column in columns:
            assert f"startswith({column.name},'+3584012')" in condition
            assert f"startswith({column.name},'04012')" in condition
        assert "contains(" in condition  # names still match
        parsed(entity, query)  # a filter Dataverse parses: every column exists
    assert {c.name for c in PHONE_COLUMNS["contact"]} >= {
        "telephone1", "telephone2", "telephone3", "mobilephone", "business2", "home2",
        "assistantphone", "managerphone", "pager", "callback",
    }  # fmt: skip
    assert search_filter("systemuser", query).startswith("isdisabled eq false and ")


def test_the_matched_column_and_number_are_reported() -> None:
    query = directory_query("040 12", "FI")
    row = {"fullname": "Maija", "telephone1": "+358 9 123", "mobilephone": "040 1234567"}
    assert query.match("contact", row) == PhoneMatch("040 1234567", "mobilephone", "mobile")
    assert query.match("account", {"telephone2": "+358401234567"}) == PhoneMatch(
        "+358401234567", "telephone2", "other"
    )
    assert query.match("contact", {"telephone1": "+358 9 123"}) is None


def test_quotes_and_like_wildcards_are_literal() -> None:
    assert like_literal("50%_[x]") == "50[%][_][[]x]"
    condition = search_filter("account", directory_query("O'Brien 100%", "FI"))
    assert "contains(name,'O''Brien 100[%]')" in condition
    node = parsed("account", directory_query("O'Brien 100%", "FI"))
    assert evaluate(node, {"name": "Pat O'Brien 100% Oy"})
    assert not evaluate(node, {"name": "Pat O'Brien 1000 Oy"})


def test_too_short_and_too_long_queries_are_refused() -> None:
    with pytest.raises(QueryProblem, match="at least 2"):
        directory_query(" a ", "FI")
    with pytest.raises(QueryProblem, match=f"at most {MAX_QUERY}"):
        directory_query("x" * (MAX_QUERY + 1), "FI")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120), st.sampled_from(["FI", "US", "IT", "GB", "SE"]))
def test_any_text_is_a_query_or_a_typed_problem(raw: str, region: str) -> None:
    """Total over arbitrary text: a QueryProblem or a query whose filters Dataverse parses."""
    try:
        query = directory_query(raw, region)
    except QueryProblem:
        return
    for entity in PHONE_COLUMNS:
        parsed(entity, query)
    for prefix in query.prefixes:
        assert prefix and len(prefix) <= 2 * MAX_QUERY


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\A0[1-9][0-9]{4,8}\Z"))
def test_a_national_prefix_finds_the_e164_and_the_national_number(digits: str) -> None:
    stored_e164, stored_national = "+358" + digits[1:], digits
    query = directory_query(digits[:4], "FI")
    assert query.starts(stored_e164) and query.starts(stored_national)


ANNA = Agent(
    "anna",
    "Anna Agent",
    "00000000-0000-4000-8000-000000000001",
    "aaaaaaaa-0000-4000-8000-000000000001",
    "8:acs:anna",
    direct_numbers=("+358201234567",),
)


def test_colleagues_by_their_numbers_and_their_d365_user_once() -> None:
    query = directory_query("020 123", "FI")
    [colleague] = with_colleagues([], (ANNA,), query)
    assert colleague.matched == PhoneMatch("+358201234567", "directNumbers", "direct")
    user = DirectoryEntry(
        "systemuser", ANNA.system_user_id.upper(), "Anna Agent", "0401234567",
        PhoneMatch("0401234567", "mobilephone", "mobile"),
    )  # fmt: skip
    found = with_colleagues([user], (ANNA,), directory_query("040 123", "FI"))
    assert [(e.kind, e.id, e.phone, e.matched) for e in found] == [
        ("colleague", "anna", "0401234567", user.matched)
    ]
    assert with_colleagues([], (ANNA,), directory_query("ben", "FI")) == []


def agent_calls() -> AgentCalls:
    from shared.domain.activity import SubjectTemplates
    from shared.services.agent_calls import AgentCalls

    w = World()
    return AgentCalls(
        flow=w.flow,
        directory=w.flow.directory,
        calls=w.calls,
        agents=w.agents,
        crm=w.crm,
        telephony=w.telephony,
        templates=SubjectTemplates(),
        default_region="FI",
    )


@pytest.mark.parametrize("q", ["x", "x" * (MAX_QUERY + 1)])
def test_the_service_refuses_a_query_it_cannot_search_with_a_422(q: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        agent_calls().directory_search(q, 20, 1)
    assert refused.value.errors[0].field == "q"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=150))
def test_the_service_answers_any_query_with_a_page_or_a_422(raw: str) -> None:
    try:
        page = agent_calls().directory_search(raw, 20, 1)
    except Unprocessable as refused:
        assert refused.errors[0].field == "q"
    else:
        assert page.page == 1
