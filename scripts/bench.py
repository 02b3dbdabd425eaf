"""`make bench`: the performance figures, one `<name>: <value>` line each (budgets in the
architecture handbook). Add a figure by writing a function and listing it in FIGURES."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUNS = int(os.environ.get("BENCH_RUNS", "9"))
DEFAULT_PARALLELISM = 16  # the ACS emulator's default concurrent deliveries


def _import_seconds(module: str, env: dict[str, str]) -> float:
    """Wall time of a fresh interpreter importing `module`."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def cold_start_ratio() -> list[str]:
    """Median over fresh processes of import function_app / import azure.functions."""
    env = {**os.environ, **json.loads((ROOT / "local.settings.json").read_text())["Values"]}
    # Both sides from bytecode, as deployed: the installed packages were compiled by pip, the
    # app is compiled here (this machine sets PYTHONDONTWRITEBYTECODE, so imports would not).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "function_app.py", "functions", "shared"],
        cwd=ROOT,
        check=True,
    )
    _import_seconds("function_app", env)  # warm the file system caches for both sides alike
    ratios = []
    for _ in range(RUNS):
        base = _import_seconds("azure.functions", env)
        app = _import_seconds("function_app", env)
        ratios.append(app / base)
    return [
        f"cold_start_ratio: {statistics.median(ratios):.2f}  "
        f"(budget <= 1.25; median of {RUNS} fresh processes)"
    ]


# ---------------------------------------------------------------------- the running product


@dataclass
class Rig:
    """The whole product on loopback, with request counters on Table Storage, Queue Storage
    (the app's requests: the host's queue listener is told apart by its User-Agent) and
    Dataverse. `product.store` reads Azurite directly, so what the bench reads is not counted."""

    product: Any  # tests.fixtures.product.Product
    table_proxy: Any  # emulators.common.counting_proxy.CountingProxy
    queue_proxy: Any

    def reset_counters(self) -> None:
        self.table_proxy.reset()
        self.queue_proxy.reset()

    def storage_requests(self) -> tuple[int, int]:
        """(Table, Queue) requests since the last reset; a counter that saw nothing means the
        proxy is not in the app's path, and every figure built on it would be a lie."""
        tables, queues = self.table_proxy.requests, self.queue_proxy.requests
        if not tables or not queues:
            raise SystemExit(
                f"bench: a storage counter saw nothing (table {tables}, queue {queues}): "
                "the app does not talk to Storage through the counting proxies"
            )
        return tables, queues


@contextmanager
def product_rig(extra_env: dict[str, str] | None = None) -> Iterator[Rig]:
    from emulators.common.counting_proxy import CountingProxy
    from emulators.common.processes import Azurite
    from emulators.common.tls import ensure_local_tls
    from emulators.dataverse import start as start_dataverse
    from emulators.entra import start as start_entra
    from emulators.functions_host.queues import LISTENER_USER_AGENT
    from shared.adapters.tables import TableStore
    from tests.fixtures.entra_dataverse import APP_CLIENT_ID, APP_CLIENT_SECRET, TENANT_ID
    from tests.fixtures.product import run_product

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tls = ensure_local_tls(work / "tls")
        azurite = Azurite.on_free_ports().start(log_path=work / "azurite.log")
        entra = start_entra(
            tls=tls, tenant_id=TENANT_ID, clients={APP_CLIENT_ID: APP_CLIENT_SECRET}
        )
        dataverse = start_dataverse(tls=tls, jwks_url=entra.jwks_url, issuer=entra.issuer)
        entra.register_resource(dataverse.url)
        proxy = CountingProxy(azurite.table_port)
        queue_proxy = CountingProxy(azurite.queue_port, exclude=LISTENER_USER_AGENT.encode())
        storage = azurite.connection_string.replace(
            f":{azurite.table_port}/", f":{proxy.port}/"
        ).replace(f":{azurite.queue_port}/", f":{queue_proxy.port}/")
        try:
            with run_product(
                tls=tls,
                storage=storage,
                entra=entra,
                dataverse=dataverse,
                work=work / "host",
                # The product's default, which the tests' settings turn off.
                extra_env={"POOL_CACHE_SECONDS": "10", **(extra_env or {})},
            ) as product:
                product.store = TableStore(azurite.connection_string)  # not counted
                product.store_connection = azurite.connection_string
                product.reset()
                yield Rig(product, proxy, queue_proxy)
        finally:
            queue_proxy.stop()
            proxy.stop()
            dataverse.stop()
            entra.stop()
            azurite.stop()


def _dataverse_requests(product: object) -> int:
    """Requests Dataverse billed: a $batch is one, its parts are not counted again."""
    seen = product.dataverse.requests_seen()  # type: ignore[attr-defined]
    return sum(1 for r in seen if not r.get("inBatch") and not r.get("in_batch"))


def inbound_call_requests() -> list[str]:
    """Requests per answered, identified inbound pool call, from IncomingCall to the activity
    (steady state: the third call of each kind, once each of the pool's two members has taken
    one, so the instance has seen their rows as a running contact centre has). Only the
    webhooks run: nobody polls the panel's API, whose reads are the panel's cost, not the
    call's. Counted twice: with events delivered one at a time, and concurrently as Event
    Grid does (events of one call then race, and a lost race costs a conflict and a read)."""
    from tests.fixtures.product import ANNA, BEN, CALLER, POOL_NUMBER, seed_contact, wait_for

    members = {ANNA.acs_id, BEN.acs_id}
    with product_rig() as rig:
        world = rig.product
        seed_contact(world)
        figures: dict[str, list[tuple[int, int, int]]] = {}
        placed = 0
        for mode, parallelism in (("sequential", 1), ("concurrent", DEFAULT_PARALLELISM)):
            world.acs.set_delivery(parallelism=parallelism)
            for _ in (1, 2, 3):
                placed += 1
                world.dataverse.requests_seen()
                before_dv = _dataverse_requests(world)
                rig.reset_counters()
                world.acs.place_call(CALLER, POOL_NUMBER)
                # The member rung first answers (the longest idle: Anna, then Ben): the
                # figure is an answered call, not a ring timeout and a second offer.
                ring = wait_for(
                    lambda: next((r for r in world.acs.ringing() if r["device"] in members), None),
                    what="a member to ring",
                )
                world.acs.device_answer(ring["device"])
                world.settle()  # every event of the answer applied
                world.acs.hang_up(CALLER)
                wait_for(lambda n=placed: len(world.phonecalls()) >= n, what="the activity")
                world.settle()
                tables, queues = rig.storage_requests()
                dv = _dataverse_requests(world) - before_dv
                figures.setdefault(mode, []).append((dv, tables, queues))
    (dv1, ts1, qs1), _, (dv2, ts2, qs2) = figures["sequential"]
    _, _, (_, tc2, qc2) = figures["concurrent"]
    return [
        f"dataverse_requests_per_answered_identified_inbound_call: {dv2}  "
        f"(budget <= 2 before enrichment; first call {dv1})",
        f"table_storage_requests_per_answered_inbound_call: {ts2}  "
        f"(budget <= 12; events one at a time; first call {ts1}; delivered concurrently {tc2})",
        f"queue_requests_per_answered_inbound_call: {qs2}  "
        f"(budget <= 5; first call {qs1}; delivered concurrently {qc2})",
    ]


_EXECUTED_INCOMING = re.compile(
    r"Executed 'Functions\.acs_incoming' \(Succeeded, Id=[^,]+, Duration=(\d+)ms\)"
)


def first_request_cost(restarts: int = 3) -> list[str]:
    """The incoming-call webhook's first invocation on a fresh host process against its second
    (as the host logs their durations): what the first caller after a scale-out waits for in
    imports, clients, tokens and connections. Median over `restarts` fresh processes."""
    from tests.fixtures.product import POOL_NUMBER, wait_for

    firsts: list[int] = []
    seconds: list[int] = []
    with product_rig() as rig:
        world = rig.product
        for run in range(restarts):
            world.host.stop()
            world.host.start(timeout=60)
            for n in range(2):
                seen = len(_EXECUTED_INCOMING.findall(world.host.log_text()))
                caller = f"+35840{run:03d}{n:04d}"
                world.acs.place_call(caller, POOL_NUMBER)
                durations = wait_for(
                    lambda seen=seen: _EXECUTED_INCOMING.findall(world.host.log_text())[seen:],
                    what="the incoming-call webhook",
                )
                (firsts if n == 0 else seconds).append(int(durations[0]))
                world.settle()
                world.acs.hang_up(caller)
                world.settle()
    first, second = statistics.median(firsts), statistics.median(seconds)
    return [
        f"first_request_ms: {first:.0f}  (incoming-call webhook, first invocation of a fresh "
        f"process; median of {restarts})",
        f"second_request_ms: {second:.0f}  (the same webhook, next call; first/second "
        f"{first / max(second, 1):.1f}x)",
    ]


def offers_per_second(calls: int = 200, agents: int = 40) -> list[str]:
    """Throughput with `calls` concurrent pool calls (no faults): offers rung per second of the
    run, and every call answered and recorded."""
    from scripts.soak import run_soak

    report = run_soak(calls=calls, agents=agents, fault_share=0.0, restart=False, faults=False)
    if report.answered != calls or report.activities != calls:
        raise SystemExit(f"bench: {calls} concurrent calls: " + "; ".join(report.lines()))
    return [
        f"offers_per_second_with_{calls}_concurrent_calls: {report.offers_per_second:.1f}  "
        f"(webhook p50 {report.p50:.0f} ms, p95 {report.p95:.0f} ms)"
    ]


def inbound_call_requests_with_enrichment() -> list[str]:
    """Dataverse requests per answered, identified, recorded inbound pool call, counted by the
    Dataverse emulator from the first IncomingCall to the enrichment's outcome (steady state)."""
    from scripts.dataverse_setup import client_from, ensure_columns
    from tests.fixtures.entra_dataverse import APP_CLIENT_ID, APP_CLIENT_SECRET, TENANT_ID
    from tests.fixtures.product import ANNA, CALLER, POOL_NUMBER, connected, seed_contact, wait_for

    extra = {"RECORDING_ENABLED": "true", "ENRICH_DELAY_SECONDS": "1", "ENRICH_JITTER_SECONDS": "0"}
    with product_rig(extra) as rig:
        world: Any = rig.product
        client, columns = client_from(
            {
                "DATAVERSE_URL": world.dataverse.url,
                "DATAVERSE_CLIENT_ID": APP_CLIENT_ID,
                "DATAVERSE_CLIENT_SECRET": APP_CLIENT_SECRET,
                "ENTRA_AUTHORITY_HOST": world.entra.url,
                "ENTRA_TENANT_ID": TENANT_ID,
                "TLS_CA_BUNDLE": world.host.env_overrides["TLS_CA_BUNDLE"],
                "PUBLIC_BASE_URL": world.host.env_overrides["PUBLIC_BASE_URL"],
            }
        )
        ensure_columns(client, columns)
        seed_contact(world)
        counts: list[int] = []
        for _ in (1, 2):
            before = _dataverse_requests(world)
            world.acs.place_call(CALLER, POOL_NUMBER)
            world.answer(ANNA)
            call_id = connected(world, ANNA)["callId"]
            wait_for(lambda: len(world.acs.recordings()) > len(counts), what="the recording")
            world.acs.hang_up(CALLER)
            row = wait_for(
                lambda c=call_id: (world.store.get("calls", c, "enrichment") or {}).get("outcome"),
                timeout=30,
                what="the enrichment",
            )
            assert row == "enriched", row
            world.settle()
            counts.append(_dataverse_requests(world) - before)
    return [
        f"dataverse_requests_per_answered_inbound_call_with_enrichment: {counts[1]}  "
        f"(budget <= 3: identify, create, enrich; first call {counts[0]})"
    ]


def callback_import_requests(count: int = 500) -> list[str]:
    """Dataverse requests (as the emulator received them) for the timer to import `count` open
    callback requests; the immediate path is off, so the timer imports them all."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from shared.adapters.callback_store import TableCallbackStore
    from shared.config import SETTINGS
    from shared.domain.callbacks import CallbackRequest
    from tests.fixtures.product import CALLBACK_LIST, wait_for

    batch = str(SETTINGS["CALLBACK_BATCH_SIZE"].default)  # the default, not the tests' 5
    env = {"CALLBACK_IMMEDIATE": "false", "CALLBACK_BATCH_SIZE": batch}
    with product_rig(env) as rig:
        world: Any = rig.product
        store, t0 = TableCallbackStore(world.store), datetime.now(UTC)
        for i in range(count):
            at = t0 + timedelta(milliseconds=i)
            request_id = str(uuid.uuid4())
            store.add(CallbackRequest(request_id, CALLBACK_LIST, f"+35840{i:07d}", at, "api"))
        before, marker = _dataverse_requests(world), "Executed 'Functions.callback_import' ("
        runs = world.host.log_text().count(marker)
        world.host.invoke("callback_import")
        wait_for(lambda: world.host.log_text().count(marker) > runs, 300, "the import run", 0.5)
        requests = _dataverse_requests(world) - before
        imported = len(world.phonecalls())
    return [
        f"dataverse_requests_for_{count}_callbacks: {requests}  "
        f"(budget <= {count // 50}: one per 50 callbacks; {imported} imported)"
    ]


def pool_offer_requests() -> list[str]:
    """20 calls arriving at once in a pool with 10 free members, the pool 10 or 200 members
    strong: every call rings a different member or waits, and the Table Storage requests per
    call (IncomingCall, answer, offer or queueing) do not grow with the pool's size."""
    from tests.fixtures.product import AGENTS, POOLS

    big_number, calls, free = "+358101000300", 20, 10
    small, large = (_pool_offers(n, big_number, calls, free, AGENTS, POOLS) for n in (10, 200))
    lines = [line for line, _ in (small, large)]
    if large[1] > small[1] * GROWTH_MARGIN:
        raise SystemExit(
            "bench: the Table Storage requests per call grow with the pool's size: "
            + "; ".join(lines)
        )
    return lines


GROWTH_MARGIN = 1.15  # concurrent arrivals race differently from run to run: a little noise


def _pool_offers(
    size: int, big_number: str, calls: int, free: int, base_agents: Any, base_pools: Any
) -> tuple[str, float]:
    import json
    from concurrent.futures import ThreadPoolExecutor

    from tests.fixtures.product import BEN, TestAgent, wait_for

    members = [
        TestAgent(
            f"m{i:03d}",
            f"Member {i}",
            f"{i:08d}-0000-4000-8000-00000000b00b",
            f"{i:08d}-0000-4000-8000-00000000beef",
            f"8:acs:bench_m{i:03d}",
        )
        for i in range(size)
    ]
    agents = base_agents + [
        {
            "id": m.id,
            "name": m.name,
            "entraObjectId": m.oid,
            "systemUserId": m.user_id,
            "acsUserId": m.acs_id,
        }
        for m in members
    ]
    pool = {
        "id": "big",
        "name": "Big",
        "numbers": [big_number],
        "members": [m.id for m in members],
        "ringTimeoutSeconds": 120,
    }
    env = {"AGENTS": json.dumps(agents), "SERVICE_POOLS": json.dumps([*base_pools, pool])}
    with product_rig(env) as rig:
        world = rig.product
        # Steady state: the store seeded from SERVICE_POOLS (once, by the first supervisor
        # read) and all but ten members off work before anything is counted.
        supervisor = world.token(BEN, roles=["Phone.Supervisor"])
        reply = world.http.get(  # seeding indexes every member: longer than an API call
            f"{world.host.url}/api/supervisor/pools",
            headers={"Authorization": f"Bearer {supervisor}"},
            timeout=600,
        )
        assert reply.status_code == 200, reply.text
        for m in members[free:]:
            reply = world.api("PUT", "me/availability", m, json_body={"status": "Offwork"})
            assert reply.status_code == 200, reply.text
        world.settle()
        rig.reset_counters()
        callers = [f"+35850300{n:04d}" for n in range(calls)]
        with ThreadPoolExecutor(calls) as pool_of_callers:
            list(pool_of_callers.map(lambda c: world.acs.place_call(c, big_number), callers))
        devices = {m.acs_id for m in members}

        def spread() -> list[str] | None:
            rung = [r["device"] for r in world.acs.ringing() if r["device"] in devices]
            return rung if len(rung) >= free else None

        rung = wait_for(spread, what="ten members to ring", timeout=120)

        def queued() -> bool:  # read straight from Azurite: not counted
            rows = world.store.query("poolqueue", "PartitionKey eq @pk", {"pk": "big"})
            return len(list(rows)) == calls - free

        wait_for(queued, what="the other ten to wait", timeout=120)
        world.settle()
        tables = rig.table_proxy.requests
        if len(set(rung)) != len(rung) or len(rung) != free:
            raise SystemExit(f"bench: {len(rung)} rings on {len(set(rung))} members")
        line = (
            f"pool_of_{size}: {calls} calls at once over {free} free members: "
            f"{len(set(rung))} rang, each a different member; table_storage_requests_per_call: "
            f"{tables / calls:.1f}"
        )
        for caller in callers:
            world.acs.hang_up(caller)
    return line, tables / calls


FIGURES: list[Callable[[], list[str]]] = [
    cold_start_ratio,
    first_request_cost,
    inbound_call_requests,
    inbound_call_requests_with_enrichment,
    callback_import_requests,
    pool_offer_requests,
    offers_per_second,
]


def main() -> None:
    started = time.monotonic()
    for figure in FIGURES:
        for line in figure():
            print(line, flush=True)
    print(f"bench_seconds: {time.monotonic() - started:.1f}")


if __name__ == "__main__":
    main()
