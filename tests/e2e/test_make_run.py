"""`make run` (python -m emulators.run): everything starts, the banner says where, Ctrl-C ends it
all with exit 0 and no process left; a bad setting or a taken port stops it at once, cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.common.processes import REPO_ROOT, wait_until

pytestmark = pytest.mark.e2e

START_DEADLINE = 60.0
SYNC_DEADLINE = 30.0  # one sync run (a Graph page, a Dataverse $batch, a create) takes ~1 s
SETTINGS_FILE = json.loads((REPO_ROOT / "local.settings.json").read_text(encoding="utf-8"))
SETTINGS = SETTINGS_FILE["Values"]
ANNA = next(a for a in json.loads(SETTINGS["AGENTS"]) if a["id"] == "anna")
MAIJA = "+358401234567"  # the demo contact `make run` seeds, and the seeded Teams call's caller
# The enterprise-call sync's timer never fires during a test (once a year), so only the admin API
# runs it: what the test sees in Dataverse is then what that run did.
QUIET_SYNC = {"ENTERPRISE_SYNC_SCHEDULE": "0 0 0 1 1 *"}


def free_ports(count: int) -> list[int]:
    """Distinct free ports (all sockets held open together so no two are the same)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Run:
    """One `python -m emulators.run` child (own process group) and where its output goes."""

    proc: subprocess.Popen[bytes]
    state_dir: Path
    ports: dict[str, int]
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def url(self, name: str) -> str:
        scheme = "http" if name in ("host", "devices") else "https"
        return f"{scheme}://127.0.0.1:{self.ports[name]}"

    def output(self) -> str:
        return f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def start_run(tmp_path: Path, extra_env: dict[str, str] | None = None, **ports: int) -> Run:
    chosen = dict(
        zip(
            ["host", "acs", "entra", "dataverse", "graph", "blob", "queue", "table", "devices"],
            free_ports(9),
            strict=True,
        )
    )
    chosen.update(ports)
    state_dir = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}  # the settings file decides
    env.update({"PYTHONUNBUFFERED": "1", **(extra_env or {})})
    args = [
        sys.executable,
        "-m",
        "emulators.run",
        "--host-port",
        str(chosen["host"]),
        "--acs-port",
        str(chosen["acs"]),
        "--entra-port",
        str(chosen["entra"]),
        "--dataverse-port",
        str(chosen["dataverse"]),
        "--graph-port",
        str(chosen["graph"]),
        "--azurite-ports",
        f"{chosen['blob']},{chosen['queue']},{chosen['table']}",
        "--acs-device-port",
        str(chosen["devices"]),
        "--state-dir",
        str(state_dir),
    ]
    stdout_path, stderr_path = tmp_path / "run.out", tmp_path / "run.err"
    # Files, not pipes: nobody has to drain them while the platform runs.
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=out, stderr=err, start_new_session=True
        )
    return Run(proc, state_dir, chosen, stdout_path, stderr_path)


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_identity(pid: int) -> tuple[int, str] | None:
    """(pid, start time): a pid that is reused later is not mistaken for the same process."""
    fields = _stat(pid)
    return (pid, fields[19]) if fields else None


def alive(identity: tuple[int, str]) -> bool:
    fields = _stat(identity[0])
    return fields is not None and fields[19] == identity[1] and fields[0] not in ("Z", "X")


def descendants(root: int) -> set[tuple[int, str]]:
    """Every live process below `root` (children, their children, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and fields[0] not in ("Z", "X"):
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found: set[tuple[int, str]] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            identity = process_identity(child)
            if identity:
                found.add(identity)
                todo.append(child)
    return found


def processes_mentioning(*needles: str) -> list[int]:
    """Live processes whose command line contains any needle (strays after the run ended)."""
    hits = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        identity = process_identity(int(entry))
        if identity and alive(identity) and any(n in cmdline for n in needles):
            hits.append(int(entry))
    return hits


def teams_phone_calls(run: Run, ca_path: Path) -> list[dict[str, Any]]:
    """The Phone Calls in the Dataverse emulator that the Teams sync made for Maija's number."""
    rows = requests.get(
        f"{run.url('dataverse')}/_control/records/phonecalls", verify=str(ca_path), timeout=10
    ).json()["value"]
    return [
        r
        for r in rows
        if r.get("phonenumber") == MAIJA and str(r.get("subject", "")).startswith("Teams call")
    ]


def maija_id(run: Run, ca_path: Path) -> str:
    contacts = requests.get(
        f"{run.url('dataverse')}/_control/records/contacts", verify=str(ca_path), timeout=10
    ).json()["value"]
    return str(next(c["contactid"] for c in contacts if c.get("mobilephone") == MAIJA))


def stray_needles(run: Run) -> list[str]:
    # The host's command line names the state dir; Azurite's names its blob port.
    return [str(run.state_dir), f"--blobPort {run.ports['blob']}"]


@pytest.fixture
def cleanup() -> Iterator[list[Run]]:
    """Whatever a failing test leaves running is killed: the run and anything it started."""
    runs: list[Run] = []
    yield runs
    for run in runs:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait(timeout=10)
        for pid in processes_mentioning(*stray_needles(run)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # the host and Azurite lead their own groups
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_make_run_starts_everything_and_ctrl_c_leaves_nothing(
    tmp_path: Path, cleanup: list[Run]
) -> None:
    run = start_run(tmp_path, QUIET_SYNC)
    cleanup.append(run)
    wait_until(
        lambda: "Ready." in run.stdout or run.proc.poll() is not None,
        START_DEADLINE,
        "`python -m emulators.run` printing Ready.",
    )
    assert run.proc.poll() is None, run.output()

    health = requests.get(f"{run.url('host')}/api/health", timeout=10)
    assert health.status_code == 200, health.text
    dependencies = health.json()["dependencies"]
    assert dependencies, health.text
    assert all(d["status"] == "up" for d in dependencies.values()), health.text

    banner = run.stdout
    keys = json.loads((run.state_dir / "function-keys.json").read_text())
    ca_path = run.state_dir / "tls" / "ca.pem"
    for expected in (
        run.url("host"),
        run.url("acs"),
        run.url("entra"),
        run.url("dataverse"),
        run.url("graph"),
        run.url("devices"),
        f"http://127.0.0.1:{run.ports['blob']}",
        f"http://127.0.0.1:{run.ports['queue']}",
        f"http://127.0.0.1:{run.ports['table']}",
        keys["functionKeys"]["default"],
        str(ca_path),
        "/_control/tokens",
    ):
        assert expected in banner, f"{expected!r} missing from the banner:\n{banner}"
    # Event Grid's handshake reached the app through the webhook URLs with the function key.
    assert banner.count("(validated)") == 2, banner

    # The wiring is real: Dataverse was seeded, Entra's user tokens are accepted by the app.
    contacts = requests.get(
        f"{run.url('dataverse')}/_control/records/contacts", verify=str(ca_path), timeout=10
    ).json()["value"]
    assert "+358401234567" in {c.get("mobilephone") or c.get("telephone1") for c in contacts}
    token = requests.post(
        f"{run.url('entra')}/_control/tokens",
        json={
            "oid": ANNA["entraObjectId"],
            "aud": SETTINGS["API_AUDIENCE"],
            "roles": ["Phone.Agent"],
        },
        verify=str(ca_path),
        timeout=10,
    ).json()["access_token"]
    current = requests.get(
        f"{run.url('host')}/api/me/calls/current",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert current.status_code == 200, current.text
    assert current.json() == {"call": None}

    # The web phone panel can sign in: its URL is printed, the SPA client and the users (each
    # agent as <id>@contoso.local, the supervisor sam) are registered in the Entra emulator.
    panel_url = f"{run.url('host')}/api/panel/"
    assert panel_url in banner, banner
    users = requests.get(
        f"{run.url('entra')}/_control/users", verify=str(ca_path), timeout=10
    ).json()["users"]
    roles = {u["upn"]: u["roles"] for u in users}
    assert roles["anna@contoso.local"] == ["Phone.Agent"], roles
    assert roles["sam@contoso.local"] == ["Phone.Supervisor"], roles
    sign_in_page = requests.get(
        f"{run.url('entra')}/{SETTINGS['ENTRA_TENANT_ID']}/oauth2/v2.0/authorize",
        params={
            "client_id": SETTINGS["PANEL_CLIENT_ID"],
            "redirect_uri": panel_url,
            "response_type": "code",
            "scope": f"{SETTINGS['API_AUDIENCE']}/Phone.Use openid",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
            "state": "s",
        },
        verify=str(ca_path),
        timeout=10,
    )
    assert sign_in_page.status_code == 200 and "Sign in" in sign_in_page.text
    # CORS from local.settings.json Host.CORS: the D365 org may call the API from its page.
    org = SETTINGS_FILE["Host"]["CORS"].split(",")[0].strip()
    preflight = requests.options(
        f"{run.url('host')}/api/me/calls/current",
        headers={"Origin": org, "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] == org

    # The panel's local device: anna's ACS token (from the app) signs in to the device API.
    acs_token = requests.get(
        f"{run.url('host')}/api/me/acs-token",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert acs_token.status_code == 200, acs_token.text
    assert requests.get(f"{run.url('devices')}/devices/me", timeout=10).status_code == 401
    device = requests.get(
        f"{run.url('devices')}/devices/me",
        headers={"Authorization": f"Bearer {acs_token.json()['token']}"},
        timeout=10,
    )
    assert device.status_code == 200, device.text
    assert device.json()["communicationUserId"] == ANNA["acsUserId"]

    # The enterprise-call sync reads the Graph emulator with the app's own token (granted
    # CallRecords.Read.All) and imports the seeded Teams call of Maija as a Phone Call.
    teams_calls = requests.get(
        f"{run.url('graph')}/_control/pstnCalls", verify=str(ca_path), timeout=10
    ).json()["value"]
    assert [(c["userId"], c["callType"], c["callerNumber"]) for c in teams_calls] == [
        (ANNA["entraObjectId"], "user_in", MAIJA)
    ], teams_calls
    assert not teams_phone_calls(run, ca_path)  # nothing imported it yet
    invoked = requests.post(
        f"{run.url('host')}/admin/functions/enterprise_calls_sync",
        json={"input": ""},
        headers={"x-functions-key": keys["masterKey"]},
        timeout=10,
    )
    assert invoked.status_code == 202, invoked.text
    wait_until(
        lambda: bool(teams_phone_calls(run, ca_path)),
        SYNC_DEADLINE,
        "the seeded Teams call imported as a Phone Call",
    )
    imported = teams_phone_calls(run, ca_path)
    assert len(imported) == 1, imported
    activity = imported[0]
    assert activity["directioncode"] is False  # user_in: the customer called
    assert activity["_ownerid_value"] == ANNA["systemUserId"], activity
    assert activity["_regardingobjectid_value"] == maija_id(run, ca_path), activity
    graph_calls = requests.get(
        f"{run.url('graph')}/_control/requests", verify=str(ca_path), timeout=10
    ).json()["requests"]
    # 201: the call-record subscription `make run` makes at start (the app's own timer).
    assert graph_calls and all(r["status"] in (200, 201) for r in graph_calls), graph_calls
    assert "/api/enterprise-calls/notifications (subscribed " in banner, banner

    printed = {int(p) for p in re.findall(r"pid (\d+) \(child process\)", banner)}
    started = descendants(run.proc.pid)
    assert len(printed) == 2, banner  # the Functions host and Azurite
    assert printed <= {pid for pid, _ in started}, (printed, started)

    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(timeout=30) == 0, run.output()
    assert "Stopped." in run.stdout
    left = [identity for identity in started if alive(identity)]
    assert not left, f"still running after Ctrl-C: {left}"
    assert not processes_mentioning(*stray_needles(run))


def test_an_invalid_setting_stops_start_up_naming_it_and_leaves_nothing(
    tmp_path: Path, cleanup: list[Run]
) -> None:
    run = start_run(tmp_path, {"HTTP_TIMEOUT_SECONDS": "soon"})
    cleanup.append(run)
    code = run.proc.wait(timeout=START_DEADLINE)
    assert code != 0, run.output()
    assert "HTTP_TIMEOUT_SECONDS" in run.stderr, run.output()
    assert "Ready." not in run.stdout
    assert not processes_mentioning(*stray_needles(run))


@pytest.mark.parametrize(
    ("service", "what", "flag"),
    [
        ("dataverse", "Dataverse emulator", "--dataverse-port"),
        ("graph", "Graph emulator", "--graph-port"),
    ],
)
def test_a_taken_port_is_named_and_nothing_is_started(
    tmp_path: Path, cleanup: list[Run], service: str, what: str, flag: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = int(holder.getsockname()[1])
        run = start_run(tmp_path, None, **{service: taken})
        cleanup.append(run)
        code = run.proc.wait(timeout=START_DEADLINE)
    assert code != 0, run.output()
    assert f"port {taken} ({what}) is already in use" in run.stderr, run.output()
    assert flag in run.stderr
    assert "Starting" not in run.stdout  # refused before anything was started
    assert not processes_mentioning(*stray_needles(run))


def test_make_demo_runs_against_make_run_and_exits_0(tmp_path: Path, cleanup: list[Run]) -> None:
    # The demo counts new Phone Calls: the seeded Teams call must not be imported meanwhile.
    run = start_run(tmp_path, QUIET_SYNC)
    cleanup.append(run)
    wait_until(
        lambda: "Ready." in run.stdout or run.proc.poll() is not None,
        START_DEADLINE,
        "`python -m emulators.run` printing Ready.",
    )
    assert run.proc.poll() is None, run.output()
    env = {
        **os.environ,
        "DEMO_APP_URL": run.url("host"),
        "DEMO_ACS_URL": run.url("acs"),
        "DEMO_ENTRA_URL": run.url("entra"),
        "DEMO_DATAVERSE_URL": run.url("dataverse"),
        "DEMO_CA": str(run.state_dir / "tls" / "ca.pem"),
    }
    demo = subprocess.run(
        [sys.executable, "scripts/demo.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr + run.output()
    assert "Demo finished." in demo.stdout
    assert demo.stdout.count('"activityid"') == 2  # the inbound and the click-to-dial call
    # the custom columns exist, so the enrichment can write its link and metrics
    assert "new_recordingurl" not in run.stderr
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(timeout=30) == 0
