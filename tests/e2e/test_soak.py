"""A short `make soak`: concurrent calls, Dataverse 429/503, every ACS event twice and reordered,
the host SIGKILLed and restarted in the middle; nothing lost, doubled or double-assigned."""

from __future__ import annotations

import io

import pytest

from scripts.soak import run_soak

pytestmark = pytest.mark.e2e


def test_concurrent_calls_through_faults_and_a_host_kill_lose_and_double_nothing() -> None:
    out = io.StringIO()
    report = run_soak(calls=16, agents=4, out=out)
    lines = "\n".join([out.getvalue(), *report.lines()])
    assert report.restarted, lines
    assert report.placed == 16 and report.answered == 16, lines
    assert report.activities == 16 and report.duplicates == 0 and report.missing == 0, lines
    assert report.double_assigned == 0 and report.poison_messages == 0, lines
    assert report.ok, lines
