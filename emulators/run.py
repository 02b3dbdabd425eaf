"""`make run`: Azurite, the ACS, Entra ID, Dataverse and Graph emulators and the Functions host."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import requests

from emulators.common.processes import REPO_ROOT, Azurite
from emulators.common.tls import LocalTLS, ensure_local_tls
from shared.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from emulators.acs import AcsEmulator
    from emulators.dataverse import DataverseEmulator
    from emulators.entra import EntraEmulator
    from emulators.functions_host.launcher import HostProcess
    from emulators.graph import GraphEmulator
    from emulators.panel_demo import PanelSignIn

LOOPBACK = "127.0.0.1"
DEFAULT_AZURITE_PORTS = (10000, 10001, 10002)
# Fixed ids for the demo records, so seeding twice (or in two runs) yields the same records.
_DEMO_NS = uuid.UUID("5f3c2a1e-7b4d-4c8e-9a6f-0d1e2f3a4b5c")
# The demo contact who calls: a known caller for the web phone and for the Teams call below.
DEMO_CALLER = "+358401234567"
# The Graph application permission the enterprise-call sync needs (getPstnCalls).
GRAPH_ROLE = "CallRecords.Read.All"


def demo_id(name: str) -> str:
    return str(uuid.uuid5(_DEMO_NS, name))


# ------------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class Ports:
    """Where each part listens. 0 in a flag means "pick a free port"; these are resolved."""

    host: int
    acs: int
    entra: int
    dataverse: int
    graph: int
    blob: int
    queue: int
    table: int
    acs_devices: int

    def named(self) -> list[tuple[str, str, int]]:
        """(what, flag, port) for every port, for messages that say which one is taken."""
        return [
            ("Functions host", "--host-port", self.host),
            ("ACS emulator", "--acs-port", self.acs),
            ("Entra ID emulator", "--entra-port", self.entra),
            ("Dataverse emulator", "--dataverse-port", self.dataverse),
            ("Graph emulator", "--graph-port", self.graph),
            ("Azurite blob", "--azurite-ports", self.blob),
            ("Azurite queue", "--azurite-ports", self.queue),
            ("Azurite table", "--azurite-ports", self.table),
            ("ACS browser device API", "--acs-device-port", self.acs_devices),
        ]


@dataclass(frozen=True)
class Options:
    """The command line, resolved (free ports picked, paths absolute)."""

    ports: Ports
    state_dir: Path
    settings_file: Path
    follow_logs: bool
    ready_timeout: float


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {value}")
    return value


def _three_ports(text: str) -> tuple[int, int, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            "give three ports: blob,queue,table (e.g. 10000,10001,10002)"
        )
    first, second, third = (_port(p) for p in parts)
    return first, second, third


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.run",
        description="Start the whole product locally: Azurite, the ACS, Entra ID, Dataverse and "
        "Graph emulators and the Functions host. Ctrl-C stops everything.",
    )
    parser.add_argument("--host-port", type=_port, default=7071, help="Functions host (HTTP)")
    parser.add_argument("--acs-port", type=_port, default=7443, help="ACS emulator (HTTPS)")
    parser.add_argument("--entra-port", type=_port, default=7444, help="Entra ID emulator (HTTPS)")
    parser.add_argument(
        "--dataverse-port", type=_port, default=7445, help="Dataverse emulator (HTTPS)"
    )
    parser.add_argument(
        "--graph-port", type=_port, default=7446, help="Microsoft Graph emulator (HTTPS)"
    )
    parser.add_argument(
        "--acs-device-port",
        type=_port,
        default=7447,
        help="the ACS emulator's browser device API for the web phone panel (HTTP)",
    )
    parser.add_argument(
        "--azurite-ports",
        type=_three_ports,
        default=DEFAULT_AZURITE_PORTS,
        help="Azurite blob,queue,table ports (default 10000,10001,10002)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=REPO_ROOT / ".local",
        help="CA, function keys, timer state and logs (default: .local in the repository)",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=REPO_ROOT / "local.settings.json",
        help="the app settings (Values); the environment wins over them, as in the host",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="do not copy the host's log to the terminal"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=90.0,
        help="seconds to wait for /api/health to answer 200 (default 90)",
    )
    a = parser.parse_args(argv)
    wanted = [
        a.host_port,
        a.acs_port,
        a.entra_port,
        a.dataverse_port,
        a.graph_port,
        *a.azurite_ports,
        a.acs_device_port,
    ]
    fixed = [p for p in wanted if p]
    if len(set(fixed)) != len(fixed):
        parser.error(f"each service needs its own port, got {wanted}")
    taken = set(fixed)
    resolved: list[int] = []
    for port in wanted:
        if port == 0:
            port = _free_port(taken)
            taken.add(port)
        resolved.append(port)
    return Options(
        ports=Ports(*resolved),
        state_dir=a.state_dir.resolve(),
        settings_file=a.settings.resolve(),
        follow_logs=not a.quiet,
        ready_timeout=a.ready_timeout,
    )


# ----------------------------------------------------------------------------- the app settings


class StartError(RuntimeError):
    """Start-up cannot go on; the message says why (and what to do), without a traceback."""


def read_settings_file(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json, as strings (what the host turns into env vars)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StartError(f"settings file {path} not found") from None
    except ValueError as exc:
        raise StartError(f"settings file {path} is not valid JSON: {exc}") from None
    values = raw.get("Values") if isinstance(raw, dict) else None
    if not isinstance(values, dict):
        raise StartError(f'settings file {path} has no "Values" object')
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


def service_urls(ports: Ports) -> dict[str, str]:
    return {
        "host": f"http://{LOOPBACK}:{ports.host}",
        "acs": f"https://{LOOPBACK}:{ports.acs}",
        "entra": f"https://{LOOPBACK}:{ports.entra}",
        "dataverse": f"https://{LOOPBACK}:{ports.dataverse}",
        "graph": f"https://{LOOPBACK}:{ports.graph}",
        "acs_devices": f"http://{LOOPBACK}:{ports.acs_devices}",
    }


def acs_access_key(connection_string: str) -> str:
    parts = (p.split("=", 1) for p in connection_string.strip().strip(";").split(";") if "=" in p)
    return {k.strip().lower(): v.strip() for k, v in parts}.get("accesskey", "")


def app_overrides(
    ports: Ports, ca_path: Path, storage_connection_string: str, access_key: str
) -> dict[str, str]:
    """The settings that must point at the services as they actually run (ports, CA)."""
    urls = service_urls(ports)
    return {
        "AzureWebJobsStorage": storage_connection_string,
        "ACS_CONNECTION_STRING": f"endpoint={urls['acs']};accesskey={access_key}",
        "ACS_CALLBACK_JWKS_URL": f"{urls['acs']}/calling/keys",
        "ENTRA_AUTHORITY_HOST": urls["entra"],
        "DATAVERSE_URL": urls["dataverse"],
        "GRAPH_URL": urls["graph"],
        "PUBLIC_BASE_URL": urls["host"],
        "TLS_CA_BUNDLE": str(ca_path),
        "PANEL_DEVICE_EMULATOR_URL": urls["acs_devices"],
    }


def effective_settings(
    file_values: Mapping[str, str], environ: Mapping[str, str], overrides: Mapping[str, str]
) -> Settings:
    """What the app will see: file values, under the environment, under our overrides.

    Checked here, before anything starts, with the app's own validation (same messages).
    """
    env = {**file_values, **environ, **overrides}
    try:
        return load_settings(env)
    except ConfigError as exc:
        raise StartError(
            f"{exc}\n(the values come from {len(file_values)} settings in local.settings.json "
            "and the environment; the environment wins)"
        ) from None


def acs_numbers(settings: Settings) -> list[str]:
    """Every number the ACS resource owns: each pool's numbers and each agent's direct ones."""
    numbers: list[str] = []
    for pool in settings.service_pools:
        numbers += pool.numbers
    for agent in settings.agents:
        numbers += agent.direct_numbers
    return list(dict.fromkeys(numbers))


# ----------------------------------------------------------------------------------- demo data


def demo_data(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """A small CRM: an account, two contacts (one known caller), a lead, the agents' users."""
    account_id = demo_id("account:contoso")
    users = []
    for agent in settings.agents:
        first, _, last = agent.name.partition(" ")
        email = f"{agent.id}@contoso.local"
        users.append(
            {
                "systemuserid": agent.system_user_id,
                "firstname": first,
                "lastname": last or agent.id,
                "internalemailaddress": email,
                "domainname": email,
                "azureactivedirectoryobjectid": agent.entra_object_id,
                "isdisabled": False,
                "accessmode": 0,
            }
        )
    return {
        "systemusers": users,
        "accounts": [
            {
                "accountid": account_id,
                "name": "Contoso Oy",
                "accountnumber": "C-1001",
                "telephone1": "+358912345678",
                "emailaddress1": "info@contoso.example",
                "address1_city": "Helsinki",
            }
        ],
        "contacts": [
            {
                "contactid": demo_id("contact:maija"),
                "firstname": "Maija",
                "lastname": "Virtanen",
                "mobilephone": DEMO_CALLER,
                "emailaddress1": "maija.virtanen@contoso.example",
                "jobtitle": "Purchasing manager",
                "parentcustomerid_account@odata.bind": f"/accounts({account_id})",
            },
            {
                "contactid": demo_id("contact:matti"),
                "firstname": "Matti",
                "lastname": "Korhonen",
                "telephone1": "+358501112233",
                "emailaddress1": "matti.korhonen@example.com",
            },
        ],
        "leads": [
            {
                "leadid": demo_id("lead:liisa"),
                "subject": "Interested in the web phone",
                "firstname": "Liisa",
                "lastname": "Laine",
                "companyname": "Fabrikam Oy",
                "telephone1": "+358441234567",
            }
        ],
    }


_PRIMARY_IDS = {
    "systemusers": "systemuserid",
    "accounts": "accountid",
    "contacts": "contactid",
    "leads": "leadid",
}


def create_custom_columns(
    settings: Settings, *, authority_host: str, dataverse_url: str, ca_path: Path
) -> int:
    """The customer's custom phone call columns (docs/dataverse-setup.md), as an admin would
    create them with `make dataverse-setup`; idempotent. Returns how many were created."""
    from scripts.dataverse_setup import ensure_columns
    from shared.adapters.dataverse import DataverseClient
    from shared.adapters.identity import ClientCredentialsTokenProvider
    from shared.domain.enrichment import EnrichmentColumns

    tokens = ClientCredentialsTokenProvider(
        authority_host,
        settings.entra_tenant_id,
        settings.dataverse_client_id,
        settings.dataverse_client_secret,
        f"{dataverse_url}/.default",
        str(ca_path),
    )
    client = DataverseClient(dataverse_url, tokens.token, ca_bundle=str(ca_path))
    results = ensure_columns(client, EnrichmentColumns(settings.dataverse_publisher_prefix))
    return sum(r.action == "created" for r in results)


def seed_demo_data(dataverse: DataverseEmulator, settings: Settings) -> dict[str, int]:
    """Create the demo records that are not there yet (idempotent); returns how many per set."""
    wanted = demo_data(settings)
    missing: dict[str, list[dict[str, Any]]] = {}
    for entity_set, rows in wanted.items():
        key = _PRIMARY_IDS[entity_set]
        present = {str(r.get(key, "")).lower() for r in dataverse.records(entity_set)}
        todo = [r for r in rows if str(r[key]).lower() not in present]
        if todo:
            missing[entity_set] = todo
    if missing:
        dataverse.seed(missing)
    return {entity_set: len(rows) for entity_set, rows in wanted.items()}


def demo_teams_calls(settings: Settings, now: datetime.datetime) -> list[dict[str, Any]]:
    """One Teams PSTN call the first agent answered from the demo contact, a few minutes ago:
    something for the enterprise-call sync to import as a Phone Call."""
    if not settings.agents:
        return []
    agent = settings.agents[0]
    start = now - datetime.timedelta(minutes=5)
    return [
        {
            "id": demo_id("teams-call:1"),
            "userId": agent.entra_object_id,
            "userPrincipalName": f"{agent.id}@contoso.local",
            "userDisplayName": agent.name,
            "callType": "user_in",
            "callerNumber": DEMO_CALLER,
            # The number Teams rang: the agent's own if it has one (any number works).
            "calleeNumber": next(iter(agent.direct_numbers), "+358101000300"),
            "startDateTime": start,
            "duration": 150,
        }
    ]


def seed_demo_teams_calls(graph: GraphEmulator, settings: Settings) -> int:
    """Put the demo Teams call in Graph's call records (in memory: each run starts empty)."""
    rows = demo_teams_calls(settings, datetime.datetime.now(datetime.UTC))
    graph.seed_pstn_calls(rows)
    return len(rows)


# ----------------------------------------------------------------------------------- processes


def port_free(port: int) -> bool:
    """True if a server could listen on 127.0.0.1:port now (SO_REUSEADDR as the servers set)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
            s.listen(1)
        except OSError:
            return False
    return True


def check_ports(ports: Ports) -> None:
    taken = [(what, flag, port) for what, flag, port in ports.named() if not port_free(port)]
    if taken:
        lines = [f"port {port} ({what}) is already in use" for what, _, port in taken]
        flags = sorted({flag for _, flag, _ in taken})
        holder = "it" if len(taken) == 1 else "them"
        raise StartError(
            "; ".join(lines)
            + f". Stop whatever holds {holder} (another `make run`?) or choose other ports with "
            f"{', '.join(flags)} (0 = any free port)."
        )


def _children_of(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is `pid` (Linux /proc; empty elsewhere)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # The command name is in parentheses and may hold spaces: split after the last ')'.
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry))
    return found


def reap_strays(timeout: float = 5.0) -> None:
    """End any child still alive (one an interrupted start lost track of), with its group."""
    strays = _children_of(os.getpid())
    for pid in strays:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while strays and time.monotonic() < deadline:
        strays = [p for p in strays if _alive_child(p)]
        if strays:
            time.sleep(0.05)
    for pid in strays:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)


def _alive_child(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


class LogFollower:
    """Copies new lines of a log file to a stream, each with a prefix, until stopped."""

    def __init__(self, path: Path, prefix: str, out: TextIO) -> None:
        self.path, self.prefix, self.out = path, prefix, out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="log-follower")

    def start(self) -> LogFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as f:
                f.seek(0, os.SEEK_END)  # start-up lines are in the file; the banner said where
                pending = ""
                while not self._stop.is_set():
                    chunk = f.readline()
                    if not chunk:
                        self._stop.wait(0.2)
                        continue
                    pending += chunk
                    if pending.endswith("\n"):
                        self.out.write(self.prefix + pending)
                        self.out.flush()
                        pending = ""
        except (OSError, ValueError):
            return  # the stream or file went away while stopping


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP: stop everything and exit 0."""


# ------------------------------------------------------------------------------------ platform


@dataclass
class LocalPlatform:
    """Everything `make run` starts, in start order; `stop()` ends it in reverse order."""

    options: Options
    settings: Settings
    access_key: str
    out: TextIO = sys.stdout
    tls: LocalTLS | None = None
    function_key: str = ""
    master_key: str = ""
    azurite: Azurite | None = None
    entra: EntraEmulator | None = None
    dataverse: DataverseEmulator | None = None
    graph: GraphEmulator | None = None
    acs: AcsEmulator | None = None
    host: HostProcess | None = None
    seeded: dict[str, int] = field(default_factory=dict)
    teams_calls: int = 0
    subscriptions: dict[str, str] = field(default_factory=dict)
    panel: PanelSignIn | None = None

    @property
    def logs_dir(self) -> Path:
        return self.options.state_dir / "logs"

    @property
    def keys_file(self) -> Path:
        return self.options.state_dir / "function-keys.json"

    def _create_custom_columns(self, settings: Settings, ca_path: Path) -> None:
        assert self.entra is not None and self.dataverse is not None
        create_custom_columns(
            settings,
            authority_host=self.entra.url,
            dataverse_url=self.dataverse.url,
            ca_path=ca_path,
        )

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def start(self) -> None:
        # Imported here so that `--help` and a bad setting answer without loading them.
        from emulators.acs import start as start_acs
        from emulators.dataverse import start as start_dataverse
        from emulators.entra import start as start_entra
        from emulators.functions_host.keys import load_or_create_keys
        from emulators.functions_host.launcher import HostProcess, HostStartError
        from emulators.graph import start as start_graph

        o, s = self.options, self.settings
        ports, urls = o.ports, service_urls(o.ports)
        o.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.tls = tls = ensure_local_tls(o.state_dir / "tls")
        # The keys exist before the ACS emulator starts: its Event Grid webhooks carry ?code=.
        keys = load_or_create_keys(self.keys_file)
        self.master_key = keys.master_key
        self.function_key = keys.function_keys.get("default") or next(
            iter(keys.function_keys.values()), keys.master_key
        )

        self.say(f"Starting Azurite on {ports.blob}, {ports.queue}, {ports.table} ...")
        azurite_log = self.logs_dir / "azurite.log"
        azurite_log.write_text("", encoding="utf-8")
        self.azurite = Azurite(ports.blob, ports.queue, ports.table)
        try:
            self.azurite.start(log_path=azurite_log, timeout=60)
        except (TimeoutError, RuntimeError, OSError) as exc:
            raise StartError(f"Azurite did not start: {exc} (log: {azurite_log})") from None
        if self.azurite.proc is not None and self.azurite.proc.poll() is not None:
            raise StartError(f"Azurite exited at start (log: {azurite_log})")

        self.say("Starting the Entra ID, Dataverse, Graph and ACS emulators ...")
        try:
            self.entra = start_entra(
                tls=tls,
                port=ports.entra,
                tenant_id=s.entra_tenant_id,
                clients={s.dataverse_client_id: s.dataverse_client_secret},
            )
            # The same app registration reads Teams call records: grant it Graph's app role,
            # as an admin does with admin consent (docs/enterprise-calls.md).
            self.entra.register_client(
                s.dataverse_client_id, s.dataverse_client_secret, roles=[GRAPH_ROLE]
            )
            self.dataverse = start_dataverse(
                tls=tls,
                port=ports.dataverse,
                jwks_url=self.entra.jwks_url,
                issuer=self.entra.issuer,
            )
            self.graph = start_graph(
                tls=tls,
                port=ports.graph,
                jwks_url=self.entra.jwks_url,
                issuer=self.entra.issuer,
                required_role=GRAPH_ROLE,
            )
            code = f"?code={self.function_key}"
            self.acs = start_acs(
                tls=tls,
                port=ports.acs,
                access_key=self.access_key,
                resource_id=s.acs_resource_id,
                incoming_call_webhook=f"{urls['host']}/api/acs/incoming{code}",
                recording_webhook=f"{urls['host']}/api/acs/recordings{code}",
                acs_numbers=acs_numbers(s),
                device_port=ports.acs_devices,
            )
        except OSError as exc:
            raise StartError(f"an emulator could not listen: {exc}") from None
        from emulators.panel_demo import seed_panel_sign_in

        self.panel = seed_panel_sign_in(self.entra, s, urls["host"])
        for agent in s.agents:  # the agents' ACS users exist in the resource, as in Azure
            if agent.acs_user_id:
                self.acs.identities.register(agent.acs_user_id)
        self.seeded = seed_demo_data(self.dataverse, s)
        self.teams_calls = seed_demo_teams_calls(self.graph, s)
        self._create_custom_columns(s, tls.ca_path)

        self.say(f"Starting the Functions host on {urls['host']} ...")
        host_log_dir = self.logs_dir
        (host_log_dir / "host.log").write_text("", encoding="utf-8")
        overrides = app_overrides(
            ports, tls.ca_path, self.azurite.connection_string, self.access_key
        )
        self.host = HostProcess(
            REPO_ROOT,
            work_dir=host_log_dir,
            port=ports.host,
            env=overrides,
            settings_file=o.settings_file,
            keys_file=self.keys_file,
            state_dir=o.state_dir / "functions_host",
        )
        try:
            self.host.start(timeout=60)
        except HostStartError as exc:
            raise StartError(f"the Functions host did not start: {exc}") from None

    def wait_ready(self) -> dict[str, Any]:
        """Poll `GET /api/health` until 200; fail early if a child process dies meanwhile."""
        assert self.host is not None
        url = f"{self.host.url}/api/health"
        deadline = time.monotonic() + self.options.ready_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_children()
            try:
                r = requests.get(url, timeout=10)
                if r.status_code == 200:
                    body: dict[str, Any] = r.json()
                    return body
                last = f"{r.status_code} {r.text[:500]}"
            except (requests.RequestException, ValueError) as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise StartError(
            f"GET {url} did not answer 200 within {self.options.ready_timeout:.0f}s "
            f"(last: {last}); host log: {self.host.log_path}"
        )

    def validate_subscriptions(self) -> None:
        """Event Grid's handshake, as when the subscriptions are created in Azure."""
        assert self.acs is not None
        for name in ("incomingCall", "recording"):
            try:
                result = self.acs.validate_subscription(name)
            except Exception as exc:  # a report line, not a reason to stop
                self.subscriptions[name] = f"handshake failed ({type(exc).__name__})"
                continue
            self.subscriptions[name] = (
                "validated" if result.get("validated") else f"NOT validated ({result})"
            )

    def check_children(self) -> None:
        for what, proc, log in (
            ("the Functions host", self.host.proc if self.host else None, "host.log"),
            ("Azurite", self.azurite.proc if self.azurite else None, "azurite.log"),
        ):
            if proc is not None and proc.poll() is not None:
                raise StartError(
                    f"{what} exited unexpectedly (code {proc.returncode}); "
                    f"see {self.logs_dir / log}"
                )

    def child_pids(self) -> dict[str, int]:
        pids = {}
        if self.host is not None and self.host.proc is not None:
            pids["host"] = self.host.proc.pid
        if self.azurite is not None and self.azurite.proc is not None:
            pids["azurite"] = self.azurite.proc.pid
        return pids

    def stop(self) -> None:
        """Stop in reverse order; every step runs even if an earlier one fails."""
        steps: list[tuple[str, Any]] = [
            ("host", self.host.stop if self.host else None),
            ("acs", self.acs.stop if self.acs else None),
            ("graph", self.graph.stop if self.graph else None),
            ("dataverse", self.dataverse.stop if self.dataverse else None),
            ("entra", self.entra.stop if self.entra else None),
            ("azurite", self.azurite.stop if self.azurite else None),
        ]
        for name, step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception as exc:  # keep stopping the rest
                print(f"stopping {name} failed: {exc}", file=sys.stderr, flush=True)
        reap_strays()

    def banner(self, health: Mapping[str, Any]) -> str:
        assert self.tls is not None and self.azurite is not None
        o, s = self.options, self.settings
        urls = service_urls(o.ports)
        pids = self.child_pids()
        me = os.getpid()
        rel = _relative
        host_pid = f"pid {pids.get('host')} (child process)"
        azurite_pid = f"pid {pids.get('azurite')} (child process)"
        inproc = f"in-process (pid {me})"
        loop = f"http://{LOOPBACK}"
        rows = [
            ("Functions host", urls["host"], host_pid),
            ("ACS emulator", urls["acs"], inproc),
            ("Entra ID emulator", urls["entra"], inproc),
            ("Dataverse emulator", urls["dataverse"], inproc),
            ("Graph emulator", urls["graph"], inproc),
            ("ACS device API", urls["acs_devices"], inproc),
            ("Azurite blob", f"{loop}:{o.ports.blob}", azurite_pid),
            ("Azurite queue", f"{loop}:{o.ports.queue}", azurite_pid),
            ("Azurite table", f"{loop}:{o.ports.table}", azurite_pid),
        ]
        width = max(len(r[1]) for r in rows)
        lines = ["", f"d365-phone runs locally (version {health.get('version', '?')})", ""]
        lines += [f"  {a:<20}{b:<{width + 3}}{c}".rstrip() for a, b, c in rows]
        if self.panel is not None:
            lines += [
                "",
                f"  web phone panel   {self.panel.panel_url}   (sign in as "
                + ", ".join(u.upn for u in self.panel.users)
                + ")",
            ]
        lines += [
            "",
            f"  health            {urls['host']}/api/health",
            f"  agent API         {urls['host']}/api/me/calls/current  (Bearer token, see below)",
            f"  Entra authority   {urls['entra']}/{s.entra_tenant_id}",
            f"  Dataverse API     {urls['dataverse']}/api/data/v9.2",
            f"  ACS control       {urls['acs']}/_control/state",
            f"  Graph API         {urls['graph']}/v1.0  (call records: "
            f"{urls['graph']}/_control/pstnCalls)",
        ]
        deps = health.get("dependencies") or {}
        lines += [
            "",
            "  dependencies      "
            + (", ".join(f"{k} {v.get('status')}" for k, v in deps.items()) or "(no probes)"),
            f"  function key      {self.function_key}   (x-functions-key header or ?code=)",
            f"  master key        {self.master_key}   (admin API: POST /admin/functions/<name>)",
            f"  CA bundle         {self.tls.ca_path}   (curl --cacert, requests verify=)",
            f"  keys file         {rel(self.keys_file)}",
            f"  logs              {rel(self.logs_dir / 'host.log')}, "
            f"{rel(self.logs_dir / 'azurite.log')}",
            f"  storage           {self.azurite.connection_string}",
            f"  Event Grid        IncomingCall -> {urls['host']}/api/acs/incoming?code=... "
            f"({self.subscriptions.get('incomingCall', 'not checked')})",
            f"                    RecordingFileStatusUpdated -> {urls['host']}/api/acs/recordings"
            f"?code=... ({self.subscriptions.get('recording', 'not checked')})",
        ]
        for pool in s.service_pools:
            lines.append(
                f"  pool {pool.id:<13}{', '.join(pool.numbers)}   members {', '.join(pool.members)}"
            )
        for agent in s.agents:
            lines.append(
                f"  agent {agent.id:<12}oid {agent.entra_object_id}   device "
                f"{agent.ring_target}   direct {', '.join(agent.direct_numbers) or '-'}"
            )
        lines.append(
            "  demo CRM data     "
            + ", ".join(f"{n} {k}" for k, n in self.seeded.items())
            + f"  (contact Maija Virtanen {DEMO_CALLER}, contact Matti Korhonen +358501112233)"
        )
        if self.teams_calls and s.agents:
            lines += [
                f"  demo Teams call   {DEMO_CALLER} -> {s.agents[0].id}, 5 minutes before start; "
                f"the enterprise_calls_sync timer ({s.enterprise_sync_schedule}) imports it",
                f"                    now: curl -X POST -H 'x-functions-key: <master key>' "
                f"-d '{{}}' {urls['host']}/admin/functions/enterprise_calls_sync",
            ]
        if s.agents:
            agent = s.agents[0]
            token_body = json.dumps(
                {
                    "oid": agent.entra_object_id,
                    "upn": f"{agent.id}@contoso.local",
                    "name": agent.name,
                    "aud": s.api_audience,
                    "roles": [s.agent_role],
                }
            )
            lines += [
                "",
                f"  Agent token for {agent.id} (emulators/README.md has the whole walk-through):",
                f"    TOKEN=$(curl -s --cacert {self.tls.ca_path} -X POST "
                f"{urls['entra']}/_control/tokens \\",
                f"      -H 'Content-Type: application/json' -d '{token_body}' \\",
                "      | python3 -c "
                "'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
                f'    curl -s -H "Authorization: Bearer $TOKEN" '
                f"{urls['host']}/api/me/calls/current",
            ]
        lines += ["", "  Ctrl-C stops everything.", ""]
        return "\n".join(lines)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    options = parse_args(argv)
    interrupted = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Raise once: a second Ctrl-C while stopping must not cut the clean-up short.
        if not interrupted.is_set():
            interrupted.set()
            raise Interrupted(signum)

    platform: LocalPlatform | None = None
    # SIGHUP too: closing the terminal must not leave the children (own sessions) running.
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in stop_signals}
    code = 0
    try:
        file_values = read_settings_file(options.settings_file)
        merged = {**file_values, **os.environ}
        access_key = acs_access_key(merged.get("ACS_CONNECTION_STRING", ""))
        tls_dir = options.state_dir / "tls"
        settings = effective_settings(
            file_values,
            os.environ,
            # Azurite's address is known from the ports; the CA path before it exists.
            app_overrides(
                options.ports,
                tls_dir / "ca.pem",
                Azurite(
                    options.ports.blob, options.ports.queue, options.ports.table
                ).connection_string,
                access_key,
            ),
        )
        check_ports(options.ports)
        platform = LocalPlatform(options, settings, access_key, out=out)
        platform.start()
        health = platform.wait_ready()
        platform.validate_subscriptions()
        print(platform.banner(health), file=out, flush=True)
        print("Ready.", file=out, flush=True)
        assert platform.host is not None
        follower = (
            LogFollower(platform.host.log_path, "[host] ", out).start()
            if options.follow_logs
            else None
        )
        try:
            while True:
                platform.check_children()
                time.sleep(0.5)
        finally:
            if follower is not None:
                follower.stop()
    except Interrupted:
        print("\nStopping ...", file=out, flush=True)
    except StartError as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        code = 1
    except Exception:
        traceback.print_exc()
        print("make run: stopped after an unexpected error (above)", file=sys.stderr, flush=True)
        code = 1
    finally:
        # No more interrupts: the clean-up below must run to the end.
        interrupted.set()
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        if platform is not None:
            platform.stop()
        else:
            reap_strays()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code == 0:
        print("Stopped.", file=out, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
