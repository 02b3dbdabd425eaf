"""What `make run` prints once everything answers: where each part listens, keys, the demo data
and how to get a token."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.run.options import LOOPBACK
from emulators.run.platform import LocalPlatform
from emulators.run.seeding import DEMO_CALLER
from emulators.run.settings import service_urls


def banner(platform: LocalPlatform, health: Mapping[str, Any]) -> str:
    """The banner; `health` is the body of `GET /api/health`."""
    assert platform.tls is not None and platform.azurite is not None
    o, s = platform.options, platform.settings
    urls = service_urls(o.ports)
    pids = platform.child_pids()
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
    if platform.panel is not None:
        lines += [
            "",
            f"  web phone panel   {platform.panel.panel_url}   (sign in as "
            + ", ".join(u.upn for u in platform.panel.users)
            + ")",
            f"  wallboard         {platform.panel.panel_url}wallboard.html   (a supervisor)",
        ]
    lines += [
        "",
        f"  health            {urls['host']}/api/health",
        f"  agent API         {urls['host']}/api/me/calls/current  (Bearer token, see below)",
        f"  Entra authority   {urls['entra']}/{s.entra_tenant_id}",
        f"  Dataverse API     {urls['dataverse']}/api/data/v9.2",
        f"  ACS control       {urls['acs']}/_control/state",
        f"  Graph API         {urls['graph']}/v1.0  (PSTN log: "
        f"{urls['graph']}/_control/pstnCalls, end a Teams call: .../_control/teamsCalls)",
        f"  pool alarms       Teams posts: "
        f"{platform.teams.url if platform.teams else '?'}/_control/posts, "
        f"e-mails: {urls['acs']}/_control/emails",
    ]
    deps = health.get("dependencies") or {}
    lines += [
        "",
        "  dependencies      "
        + (", ".join(f"{k} {v.get('status')}" for k, v in deps.items()) or "(no probes)"),
        f"  function key      {platform.function_key}   (x-functions-key header or ?code=)",
        f"  master key        {platform.master_key}   (admin API: POST /admin/functions/<name>)",
        f"  CA bundle         {platform.tls.ca_path}   (curl --cacert, requests verify=)",
        f"  keys file         {rel(platform.keys_file)}",
        f"  logs              {rel(platform.logs_dir / 'host.log')}, "
        f"{rel(platform.logs_dir / 'azurite.log')}",
        f"  storage           {platform.azurite.connection_string}",
        f"  Event Grid        IncomingCall -> {urls['host']}/api/acs/incoming?code=... "
        f"({platform.subscriptions.get('incomingCall', 'not checked')})",
        f"                    RecordingFileStatusUpdated -> {urls['host']}/api/acs/recordings"
        f"?code=... ({platform.subscriptions.get('recording', 'not checked')})",
        f"  Graph             callRecords -> {urls['host']}/api/enterprise-calls/notifications "
        f"({platform.subscriptions.get('graphCallRecords', 'not checked')})",
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
        + ", ".join(f"{n} {k}" for k, n in platform.seeded.items())
        + f"  (contact Maija Virtanen {DEMO_CALLER}, contact Matti Korhonen +358501112233)"
    )
    if platform.teams_calls and s.agents:
        lines += [
            f"  demo Teams call   {DEMO_CALLER} -> {s.agents[0].id}, 5 minutes before start; "
            f"the enterprise_calls_sync timer ({s.enterprise_sync_schedule}) imports it",
            f"                    now: curl -X POST -H 'x-functions-key: <master key>' "
            f"-d '{{}}' {urls['host']}/admin/functions/enterprise_calls_sync",
            "  a Teams call now  (notified to the app; its Phone Call appears within seconds)",
            f"                    curl --cacert {platform.tls.ca_path} -X POST "
            f"{urls['graph']}/_control/teamsCalls -H 'Content-Type: application/json' \\",
            f"""                      -d '{{"userId": "{s.agents[0].entra_object_id}", """
            f""""number": "{DEMO_CALLER}", "connectedSeconds": 95}}'""",
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
            f"    TOKEN=$(curl -s --cacert {platform.tls.ca_path} -X POST "
            f"{urls['entra']}/_control/tokens \\",
            f"      -H 'Content-Type: application/json' -d '{token_body}' \\",
            "      | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
            f'    curl -s -H "Authorization: Bearer $TOKEN" {urls["host"]}/api/me/calls/current',
        ]
    lines += ["", "  Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
