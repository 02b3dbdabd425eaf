"""Fixtures shared by every test layer; each area keeps its own in tests/fixtures/."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.platform",
    "tests.fixtures.host",
    "tests.fixtures.acs",
    "tests.fixtures.entra_dataverse",
    "tests.fixtures.graph",
    "tests.fixtures.product",
]
