"""Health: each dependency probed concurrently, with a time limit."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from shared.views import DependencyHealth, HealthView


class Probe(Protocol):
    """Anything that can tell whether it reaches its service: `ping()` raises if not."""

    def ping(self) -> None: ...


@dataclass(frozen=True)
class DependencyStatus:
    name: str
    up: bool
    duration_ms: int
    error: str | None = None


@dataclass(frozen=True)
class HealthReport:
    version: str
    dependencies: tuple[DependencyStatus, ...]

    @property
    def healthy(self) -> bool:
        return all(d.up for d in self.dependencies)


def check_health(version: str, probes: Sequence[tuple[str, Probe]]) -> HealthReport:
    """Ping every dependency at once; a failure is reported by its exception type only."""

    def run(name: str, probe: Probe) -> DependencyStatus:
        started = time.monotonic()
        try:
            probe.ping()
        except Exception as exc:  # any failure means "down"; its text may carry URLs or keys
            return DependencyStatus(name, False, _ms_since(started), type(exc).__name__)
        return DependencyStatus(name, True, _ms_since(started))

    with ThreadPoolExecutor(max_workers=max(1, len(probes))) as pool:
        results = list(pool.map(lambda p: run(*p), probes))
    return HealthReport(version, tuple(results))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def health_view(report: HealthReport) -> HealthView:
    return HealthView(
        status="healthy" if report.healthy else "unhealthy",
        version=report.version,
        dependencies={
            d.name: DependencyHealth(
                status="up" if d.up else "down", duration_ms=d.duration_ms, error=d.error or None
            )
            for d in report.dependencies
        },
    )
