"""Everything `make run` starts, in start order, and how it stops in reverse order."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import requests

from emulators.common.processes import REPO_ROOT, Azurite
from emulators.common.tls import LocalTLS, ensure_local_tls
from emulators.panel_demo import PanelSignIn, seed_panel_sign_in
from emulators.run.options import Options, StartError
from emulators.run.processes import reap_strays
from emulators.run.seeding import create_custom_columns, seed_demo_data, seed_demo_teams_calls
from emulators.run.settings import acs_numbers, app_overrides, service_urls
from shared.config import Settings

if TYPE_CHECKING:
    from emulators.acs import AcsEmulator
    from emulators.dataverse import DataverseEmulator
    from emulators.entra import EntraEmulator
    from emulators.functions_host.launcher import HostProcess
    from emulators.graph import GraphEmulator
    from emulators.teams import TeamsWebhookEmulator


DEMO_ALARM_SENDER = "DoNotReply@alarms.contoso.local"
DEMO_ALARM_TO = "supervisors@contoso.local"
# The Graph application permission the enterprise-call sync needs (getPstnCalls).
GRAPH_ROLE = "CallRecords.Read.All"


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
    teams: TeamsWebhookEmulator | None = None
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

    def _create_custom_columns(self, ca_path: Path) -> None:
        assert self.entra is not None and self.dataverse is not None
        create_custom_columns(
            self.options.settings_file,
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
        from emulators.teams import start as start_teams

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
            self.entra.register_resource(self.dataverse.url)  # the org, for the app's tokens
            self.graph = start_graph(
                tls=tls,
                port=ports.graph,
                jwks_url=self.entra.jwks_url,
                issuer=self.entra.issuer,
                required_role=GRAPH_ROLE,
            )
            # A Teams channel's webhook for the pool alarms (a free port; the banner says where).
            self.teams = start_teams(tls=tls)
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
        self.panel = seed_panel_sign_in(self.entra, s, urls["host"])
        for agent in s.agents:  # the agents' ACS users exist in the resource, as in Azure
            if agent.acs_user_id:
                self.acs.identities.register(agent.acs_user_id)
        self.seeded = seed_demo_data(self.dataverse, s)
        self.teams_calls = seed_demo_teams_calls(self.graph, s)
        self._create_custom_columns(tls.ca_path)

        self.say(f"Starting the Functions host on {urls['host']} ...")
        host_log_dir = self.logs_dir
        (host_log_dir / "host.log").write_text("", encoding="utf-8")
        overrides = app_overrides(
            ports, tls.ca_path, self.azurite.connection_string, self.access_key
        )
        # Pool alarms go to the Teams emulator and, by ACS Email, to the ACS emulator's mailbox.
        overrides.update(
            {
                "ALARM_TEAMS_WEBHOOK_URL": self.teams.webhook_url,
                "ALARM_EMAIL_SENDER": DEMO_ALARM_SENDER,
                "ALARM_EMAIL_TO": DEMO_ALARM_TO,
            }
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

    def subscribe_teams_calls(self, timeout: float = 30.0) -> None:
        """Run the app's subscription timer now, as after a deployment: Graph validates our
        webhook and holds the call-record subscription, so an ended Teams call is notified."""
        assert self.host is not None and self.graph is not None
        if not self.settings.enterprise_notifications:
            self.subscriptions["graphCallRecords"] = "off (ENTERPRISE_NOTIFICATIONS=false)"
            return
        try:
            reply = self.host.invoke("enterprise_calls_subscription")
        except requests.RequestException as exc:
            self.subscriptions["graphCallRecords"] = f"timer not run ({type(exc).__name__})"
            return
        if reply.status_code != 202:
            self.subscriptions["graphCallRecords"] = f"timer not run ({reply.status_code})"
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [s for s in self.graph.subscriptions.all() if not s.removed]
            if live:
                self.subscriptions["graphCallRecords"] = f"subscribed ({live[0].id})"
                return
            time.sleep(0.2)
        self.subscriptions["graphCallRecords"] = "no subscription yet (see the host log)"

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
            ("teams", self.teams.stop if self.teams else None),
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
