"""Pool settings and routing order (docs/pools.md): opening hours and exceptions with an injected
clock, the JSON a supervisor sends, and who is offered a call first."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.domain.availability import AgentState
from shared.domain.directory import parse_pool, pool_json
from shared.domain.schedule import Then, closure
from tests.unit.fakes import FakeAgents, FakeRoster

HELSINKI = {
    "timeZone": "Europe/Helsinki",
    "hours": {"mon": [["08:00", "16:00"]], "sat": [["10:00", "14:00"]]},
    "closed": {"then": "pool", "target": "night"},
    "exceptions": [
        {
            "date": "2026-12-24",
            "name": "Christmas Eve",
            "announcement": "Merry Christmas: we are closed.",
            "then": "hangup",
        },
        {
            "date": "2026-12-31",
            "name": "New Year's Eve",
            "hours": [["08:00", "12:00"]],
            "then": "number",
            "target": "+358401112233",
        },
    ],
}


def pool(**more: object):  # type: ignore[no-untyped-def]
    problems: list[str] = []
    parsed = parse_pool(
        {"id": "p", "numbers": [], "members": [], **HELSINKI, **more}, "p", problems
    )
    assert parsed is not None and not problems, problems
    return parsed


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_opening_hours_follow_the_pools_time_zone_and_summer_time() -> None:
    schedule = pool().schedule
    # Monday 2026-06-01: Helsinki is UTC+3 in summer, so 08:00 local is 05:00 UTC.
    assert closure(schedule, utc("2026-06-01T04:59:00")) is not None
    assert closure(schedule, utc("2026-06-01T05:00:00")) is None
    assert closure(schedule, utc("2026-06-01T12:59:00")) is None
    # Monday 2026-11-30: UTC+2 in winter, 08:00 local is 06:00 UTC.
    assert closure(schedule, utc("2026-11-30T05:30:00")) is not None
    assert closure(schedule, utc("2026-11-30T06:00:00")) is None
    shut = closure(schedule, utc("2026-06-02T09:00:00"))  # Tuesday: no hours at all
    assert shut is not None and shut.reason == "hours"
    assert (shut.action.then, shut.action.target) == (Then.POOL, "night")


def test_an_exception_day_overrides_the_weekly_hours_with_its_own_action() -> None:
    schedule = pool().schedule
    # Christmas Eve 2026 is a Thursday; closed all day, with its announcement.
    eve = closure(schedule, utc("2026-12-24T10:00:00"))
    assert eve is not None and eve.reason == "Christmas Eve"
    assert (eve.action.then, eve.action.announcement) == (
        Then.HANG_UP,
        "Merry Christmas: we are closed.",
    )
    # New Year's Eve (a Thursday, normally closed) opens 08-12 local, then forwards.
    assert closure(schedule, utc("2026-12-31T07:00:00")) is None  # 09:00 local
    late = closure(schedule, utc("2026-12-31T11:00:00"))  # 13:00 local
    assert late is not None and late.action.target == "+358401112233"


def test_a_pool_without_hours_is_always_open() -> None:
    problems: list[str] = []
    always = parse_pool({"id": "p", "numbers": []}, "p", problems)
    assert always is not None and closure(always.schedule, utc("2026-12-24T03:00:00")) is None


def test_a_pool_reads_back_what_it_writes() -> None:
    written = pool(
        members=[{"agentId": "anna", "skill": 9}, "ben"],
        wrapUpSeconds=30,
        overflow={"maxQueueLength": 5, "then": "callback"},
    )
    problems: list[str] = []
    assert parse_pool(pool_json(written), "p", problems) == written and not problems
    assert (written.skill("anna"), written.skill("ben"), written.wrap_up_seconds) == (9, 5, 30)


def test_every_problem_of_a_pool_is_named() -> None:
    problems: list[str] = []
    parse_pool(
        {
            "id": "p",
            "numbers": ["123"],
            "members": [{"agentId": "anna", "skill": 11}, "anna"],
            "timeZone": "Nowhere/Town",
            "hours": {"mon": [["16:00", "08:00"]], "funday": []},
            "closed": {"then": "pool"},
            "exceptions": [{"date": "24.12.2026"}],
            "overflow": {"then": "number", "target": "+358401112233", "announcement": "x"},
        },
        "p",
        problems,
    )
    text = "; ".join(problems)
    for expected in (
        "E.164",
        "skill must be",
        "'anna' twice",
        "timeZone",
        "hours must be an object",
        "closed.target must be a pool id",
        "YYYY-MM-DD",
        "overflow takes no announcement",
        "needs maxQueueLength and/or maxWaitSeconds",
    ):
        assert expected in text, (expected, text)


def test_the_best_skill_goes_first_then_the_longest_idle_out_of_after_call_work() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    team = pool(
        members=[
            {"agentId": "anna", "skill": 3},
            {"agentId": "ben", "skill": 8},
            {"agentId": "cat", "skill": 8},
            {"agentId": "dan", "skill": 8},
        ]
    )
    agents = FakeAgents()
    agents.rows["ben"] = AgentState("ben", idle_since=now - timedelta(minutes=1))
    agents.rows["cat"] = AgentState("cat", idle_since=now - timedelta(minutes=9))
    agents.rows["dan"] = AgentState(
        "dan", idle_since=now - timedelta(minutes=30), wrap_until=now + timedelta(seconds=5)
    )
    roster = FakeRoster(agents, lambda _: team)
    assert roster.free_members("p", now, 10) == ["cat", "ben", "anna"]  # dan wraps up
    agents.rows["dan"] = replace(agents.rows["dan"], wrap_until=now - timedelta(seconds=1))
    assert roster.free_members("p", now, 10) == ["cat", "ben", "dan", "anna"]  # dan idle from
    assert roster.free_members("p", now, 2) == ["cat", "ben"]  # the end of his wrap-up
