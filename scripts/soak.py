"""`make soak`: many concurrent pool calls through the emulators with faults on every side, and
the Functions host SIGKILLed and restarted once in the middle; prints what was lost or doubled
and exits non-zero on any loss, duplicate or double assignment.

The faults: Dataverse answers a share of its requests 429 or 503 (with Retry-After), ACS sends
every event twice and swaps neighbours, and delivery is concurrent (as Event Grid's is). Agents'
devices answer as soon as they ring; callers hang up `TALK_SECONDS` after being answered.
`python scripts/soak.py --calls 200 --agents 40` is the full run (`make soak`)."""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TALK_SECONDS = 1.0
RING_SECONDS = 20
POLL_SECONDS = 0.05


@dataclass
class SoakReport:
    placed: int = 0
    answered: int = 0
    activities: int = 0
    duplicates: int = 0
    missing: int = 0
    unanswered: int = 0
    double_assigned: int = 0
    poison_messages: int = 0
    webhook_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    restarted: bool = False
    restart_expected: bool = True
    offers_per_second: float = 0.0
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            (self.restarted or not self.restart_expected)
            and self.placed > 0
            and self.answered == self.placed
            and self.activities == self.answered
            and not (self.duplicates or self.missing or self.unanswered)
            and not (self.double_assigned or self.poison_messages)
        )

    @property
    def p50(self) -> float:
        return statistics.median(self.webhook_ms or [0.0])

    @property
    def p95(self) -> float:
        ms = sorted(self.webhook_ms) or [0.0]
        return ms[min(len(ms) - 1, int(len(ms) * 0.95))]

    def lines(self) -> list[str]:
        return [
            f"calls_placed: {self.placed}",
            f"calls_answered: {self.answered}",
            f"activities_created: {self.activities}",
            f"duplicates: {self.duplicates}",
            f"missing: {self.missing}  (answered calls without an activity)",
            f"unanswered: {self.unanswered}  (callers never put through to an agent)",
            f"agents_double_assigned: {self.double_assigned}",
            f"poison_queue_messages: {self.poison_messages}",
            f"webhook_latency_p50_ms: {self.p50:.0f}",
            f"webhook_latency_p95_ms: {self.p95:.0f}",
            f"offers_answered_per_second: {self.offers_per_second:.1f}",
            f"host_killed_and_restarted: {self.restarted}",
            f"soak_seconds: {self.seconds:.1f}",
            *(f"  {d}" for d in self.details),
            f"soak: {'ok' if self.ok else 'FAILED'}",
        ]


def _agents(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"agent{i:03d}",
            "name": f"Agent {i:03d}",
            "entraObjectId": f"{i:08d}-1111-4111-8111-111111111111",
            "systemUserId": f"{i:08d}-0000-4000-8000-0000000000aa",
            "acsUserId": f"8:acs:soak_{i:03d}",
            "callerIds": [],
        }
        for i in range(n)
    ]


class Phones:
    """The people: devices answer when they ring, callers hang up after talking a while."""

    def __init__(self, acs: Any, devices: set[str]) -> None:
        self.acs, self.devices = acs, devices
        self.answered: dict[str, str] = {}  # call connection id -> device
        self.answer_times: list[float] = []
        self.talking: dict[str, tuple[str, float]] = {}  # device -> (call, answered at)
        self.double_rung: set[str] = set()
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="soak-phones")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # an emulator answer to an odd moment: try again
                self.errors[type(exc).__name__] += 1
            self._stop.wait(POLL_SECONDS)

    def _step(self) -> None:
        now = time.monotonic()
        for ring in self.acs.ringing():
            device, cid = ring["device"], ring["callConnectionId"]
            if device not in self.devices or cid in self.answered:
                continue
            if device in self.talking:
                # Rung while on another call: the router gave one agent two calls.
                self.double_rung.add(f"{device}:{cid}")
                continue
            self.acs.device_answer(device, cid)
            self.answered[cid] = device
            self.answer_times.append(now)
            self.talking[device] = (cid, now)
        for device, (cid, since) in list(self.talking.items()):
            if now - since < TALK_SECONDS:
                continue
            customer = self.acs.call(cid).get("customer") or ""
            try:
                self.acs.hang_up(customer.removeprefix("4:"), cid)
            except Exception:
                self.errors["hangUp"] += 1  # gone already (ended by the app): fine
            del self.talking[device]


def run_soak(
    *,
    calls: int,
    agents: int,
    fault_share: float = 0.2,
    deadline_seconds: float | None = None,
    out: Any = sys.stdout,
    restart: bool = True,
    faults: bool = True,
) -> SoakReport:
    """`restart=False` and `faults=False` make it a plain throughput run (`make bench`)."""
    from scripts.bench import product_rig
    from tests.fixtures.product import POOL_NUMBER, wait_for

    roster = _agents(agents)
    pools = [
        {
            "id": "soak",
            "name": "Soak",
            "numbers": [POOL_NUMBER],
            "members": [a["id"] for a in roster],
            "ringTimeoutSeconds": RING_SECONDS,
        }
    ]
    env = {
        "AGENTS": json.dumps(roster),
        "SERVICE_POOLS": json.dumps(pools),
        "ENRICH_DELAY_SECONDS": "600",  # the enrichment is not what this run is about
        # The housekeeping timer (every minute in Azure) heals what the kill left: an offer
        # recorded but never rung expires RING_SECONDS + LOST_RING_MARGIN_SECONDS after it.
        "HOUSEKEEPING_SCHEDULE": "*/5 * * * * *",
    }
    report = SoakReport()
    started = time.monotonic()
    with product_rig(env) as rig:
        world = rig.product
        world.dataverse.seed(
            {
                "systemusers": [
                    {"systemuserid": a["systemUserId"], "fullname": a["name"]} for a in roster
                ]
            }
        )
        # Every event twice, neighbours swapped, concurrent; retries long enough to outlast
        # a host restart (Event Grid keeps trying for a day).
        world.acs.set_delivery(
            duplicate=faults, reorder=faults, max_attempts=9, retry_delay_seconds=0.25
        )
        if faults and fault_share:
            world.dataverse.throttle(share=fault_share, retry_after=1, statuses=(429, 503))
        phones = Phones(world.acs, {a["acsUserId"] for a in roster})
        phones.start()
        numbers = [f"+35840{i:07d}" for i in range(calls)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: world.acs.place_call(n, POOL_NUMBER), numbers))
        report.placed = len(numbers)
        report.restart_expected = restart
        placed_at = time.monotonic()
        print(f"soak: {calls} calls placed to {agents} agents", file=out, flush=True)

        from shared.services.calls import LOST_RING_MARGIN_SECONDS

        # A call whose offer the kill left unrung is offered again after the ring timeout
        # and the margin (the housekeeping timer): the run waits for it.
        healing = RING_SECONDS + LOST_RING_MARGIN_SECONDS + 10 if restart else 0
        deadline = started + (deadline_seconds or min(280.0, 40.0 + calls * 1.2) + healing)
        if restart:
            wait_for(
                lambda: len(phones.answered) >= calls // 2,
                timeout=max(1.0, deadline - time.monotonic()),
                what="half the calls to be answered",
                interval=0.2,
            )
            world.host.proc.kill()  # SIGKILL: no drain, no goodbye
            world.host.proc.wait(10)
            print(f"soak: host killed with {len(phones.answered)} answered", file=out, flush=True)
            world.host.start(timeout=60)
            report.restarted = True
            print("soak: host restarted", file=out, flush=True)

        def all_ended() -> bool:
            state = world.acs.state()["calls"]  # a call connection per answered IncomingCall
            ended = len(state) >= calls and all(c.get("endedAt") for c in state)
            return ended and not phones.talking

        try:
            wait_for(
                all_ended,
                timeout=max(1.0, deadline - time.monotonic()),
                what="every call to end",
                interval=0.5,
            )
            wait_for(world.acs.idle, timeout=60, what="ACS event delivery to finish")
        except AssertionError as exc:
            print(f"soak: {exc}", file=out, flush=True)
            _explain_stuck(world, phones, out)
        phones.stop()
        world.dataverse.throttle(share=0.0)
        report.answered = len(phones.answered)
        if phones.answer_times:
            span = max(phones.answer_times) - placed_at
            report.offers_per_second = len(phones.answer_times) / max(span, 0.001)
        report.unanswered = report.placed - report.answered
        _count_outcomes(world, report, set(numbers), phones)
        report.poison_messages = _poison_messages(world.store_connection)
        report.webhook_ms = [
            ms
            for d in world.acs.deliveries()
            if d.get("delivered")
            for ms in (d.get("latencyMs") or [])[-1:]
        ]
    report.seconds = time.monotonic() - started
    return report


def _count_outcomes(world: Any, report: SoakReport, numbers: set[str], phones: Phones) -> None:
    activities = world.phonecalls()
    per_number = Counter(a.get("phonenumber") for a in activities)
    report.activities = sum(1 for a in activities if a.get("phonenumber") in numbers)
    report.duplicates = sum(n - 1 for n in per_number.values() if n > 1)
    customers = {
        world.acs.call(cid).get("customer", "").removeprefix("4:") for cid in phones.answered
    }
    report.missing = len(customers - set(per_number))
    reasons = Counter(world.acs.call(cid).get("endReason") for cid in phones.answered)
    report.details.append(f"answered calls by ACS end reason: {dict(reasons)}")
    events = Counter(d.get("eventType", "").rsplit(".", 1)[-1] for d in world.acs.deliveries())
    report.details.append(f"events delivered: {dict(events)}")
    refused = Counter(
        f"{r.get('method')} {r.get('status')}"
        for r in world.acs.requests_log()
        if int(r.get("status") or 0) >= 400
    )
    report.details.append(f"ACS requests refused: {dict(refused)}")
    # An agent answering two calls at once, by the app's own record of who answered when.
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for row in world.store.query("calls", "RowKey eq @r", {"r": "call"}):
        agent, begun, ended = (
            row.get("answered_by"),
            row.get("first_answered_at"),
            row.get("ended_at"),
        )
        if agent and begun and ended:
            spans[agent].append((begun, ended))
    overlaps = []
    for agent, intervals in spans.items():
        intervals.sort()
        overlaps += [(agent, a, b) for a, b in itertools.pairwise(intervals) if b[0] < a[1]]
    report.double_assigned = max(len(overlaps), len(phones.double_rung))
    report.details += [f"overlap {o}" for o in overlaps] + [
        f"rang while talking {d}" for d in sorted(phones.double_rung)
    ]


def _explain_stuck(world: Any, phones: Phones, out: Any) -> None:
    """What a call that never ended looks like on both sides, for whoever reads the failure."""
    for call in world.acs.state()["calls"]:
        if call.get("endedAt"):
            continue
        print(
            "soak: still up in ACS:",
            json.dumps({k: call.get(k) for k in ("callConnectionId", "customer", "state")}),
            "ringing:",
            [r["device"] for r in call.get("ringing", [])],
            "participants:",
            [p["rawId"] for p in call.get("participants", [])],
            file=out,
        )
    print(f"soak: phones talking {phones.talking}, errors {dict(phones.errors)}", file=out)
    for row in world.store.query("calls", "RowKey eq @r", {"r": "call"}):
        if not row.get("ended_at"):
            offers = json.loads(row.get("offers") or "[]")
            print(
                "soak: not ended in the app:",
                row.get("customer_number"),
                "connection",
                row.get("connection_id"),
                "app connected",
                row.get("app_connected_at"),
                "offers",
                [(o["agentId"], o["outcome"]) for o in offers],
                file=out,
            )
    busy = [
        (r["RowKey"], r.get("busy_call_id"))
        for r in world.store.query("agents", "PartitionKey eq @p", {"p": "agent"})
    ]
    print(f"soak: agents {busy}", file=out, flush=True)


def _poison_messages(storage: str) -> int:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueServiceClient

    service = QueueServiceClient.from_connection_string(storage)
    total = 0
    for queue in service.list_queues():
        if not queue.name.endswith("-poison"):
            continue
        try:
            total += (
                service.get_queue_client(queue.name)
                .get_queue_properties()
                .approximate_message_count
            )
        except ResourceNotFoundError:
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--fault-share", type=float, default=0.2)
    args = parser.parse_args()
    report = run_soak(calls=args.calls, agents=args.agents, fault_share=args.fault_share)
    for line in report.lines():
        print(line, flush=True)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
