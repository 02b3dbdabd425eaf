"""`make demo`: a guided tour against `make run` — an inbound pool call from a known contact,
answered, noted and ended; then click-to-dial to an unknown number. Prints each step and the
Phone Call activities as stored in the Dataverse emulator."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

SETTINGS = json.loads((ROOT / "local.settings.json").read_text())["Values"]
# `make run`'s defaults; the tests run the demo against a `make run` on other ports.
CA = os.environ.get("DEMO_CA", str(ROOT / ".local" / "tls" / "ca.pem"))
APP = os.environ.get("DEMO_APP_URL", "http://127.0.0.1:7071") + "/api"
ACS = os.environ.get("DEMO_ACS_URL", "https://127.0.0.1:7443") + "/_control"
ENTRA = os.environ.get("DEMO_ENTRA_URL", "https://127.0.0.1:7444") + "/_control"
DATAVERSE = os.environ.get("DEMO_DATAVERSE_URL", "https://127.0.0.1:7445") + "/_control"
CONTACT_NUMBER = "+358401234567"
UNKNOWN_NUMBER = "+358509876543"

http = requests.Session()
http.trust_env = False  # the machine's REQUESTS_CA_BUNDLE must not replace our local CA


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def call(method: str, url: str, **kw: Any) -> Any:
    verify = CA if url.startswith("https") else True
    reply = http.request(method, url, verify=verify, timeout=30, **kw)
    if reply.status_code >= 400:
        sys.exit(f"{method} {url} answered {reply.status_code}: {reply.text[:500]}")
    return reply.json() if reply.content else None


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def dial(me: dict[str, str], number: str) -> dict[str, Any] | None:
    """Click-to-dial; None while the previous call is still releasing the agent (409)."""
    reply = http.post(f"{APP}/me/calls", headers=me, json={"number": number}, timeout=30)
    if reply.status_code == 409:
        return None
    if reply.status_code >= 400:
        sys.exit(f"POST {APP}/me/calls answered {reply.status_code}: {reply.text[:500]}")
    result: dict[str, Any] = reply.json()
    return result


def ringing(device: str) -> dict[str, Any] | None:
    wanted = {device, f"4:{device}"}
    return next((r for r in call("GET", f"{ACS}/ringing") if r["device"] in wanted), None)


def activities() -> list[dict[str, Any]]:
    """The web phone's Phone Calls (not, say, Teams calls the enterprise sync imports)."""
    rows: list[dict[str, Any]] = call("GET", f"{DATAVERSE}/records/phonecalls")["value"]
    return [r for r in rows if str(r.get("subject", "")).startswith(("Incoming", "Outgoing"))]


def ensure_demo_records(agents: list[dict[str, Any]]) -> None:
    """`make run` seeds these; add them only where they are missing (idempotent)."""
    users = {u["systemuserid"] for u in call("GET", f"{DATAVERSE}/records/systemusers")["value"]}
    contacts = call("GET", f"{DATAVERSE}/records/contacts")["value"]
    seed: dict[str, list[dict[str, Any]]] = {}
    missing_users = [a for a in agents if a["systemUserId"] not in users]
    if missing_users:
        seed["systemusers"] = [
            {
                "systemuserid": a["systemUserId"],
                "fullname": a["name"],
                "azureactivedirectoryobjectid": a["entraObjectId"],
            }
            for a in missing_users
        ]
    if not any(CONTACT_NUMBER in (c.get("mobilephone"), c.get("telephone1")) for c in contacts):
        seed["contacts"] = [
            {"firstname": "Maija", "lastname": "Virtanen", "mobilephone": CONTACT_NUMBER}
        ]
    if seed:
        call("POST", f"{DATAVERSE}/seed", json=seed)


def current(me: dict[str, str]) -> dict[str, Any] | None:
    view: dict[str, Any] | None = call("GET", f"{APP}/me/calls/current", headers=me)["call"]
    return view


def main() -> None:
    try:
        http.get(f"{APP}/health", timeout=5)
    except requests.RequestException:
        sys.exit(f"Nothing answers on {APP}: start `make run` in another terminal first.")
    agents = json.loads(SETTINGS["AGENTS"])
    agent, pool = agents[0], json.loads(SETTINGS["SERVICE_POOLS"])[0]

    step(f"D365 holds a contact calling from {CONTACT_NUMBER} and the agents' users")
    ensure_demo_records(agents)
    call("POST", f"{ACS}/reset")
    before = len(activities())
    token = call(
        "POST",
        f"{ENTRA}/tokens",
        json={
            "oid": agent["entraObjectId"],
            "upn": f"{agent['id']}@contoso.example",
            "name": agent["name"],
            "roles": ["Phone.Agent"],
            "aud": SETTINGS["API_AUDIENCE"],
        },
    )["access_token"]
    me = {"Authorization": f"Bearer {token}"}

    step(f"The customer calls the {pool['name']} pool at {pool['numbers'][0]}")
    call("POST", f"{ACS}/incoming-calls", json={"from": CONTACT_NUMBER, "to": pool["numbers"][0]})
    ring = wait_for(lambda: ringing(agent["acsUserId"]), f"{agent['name']}'s web phone to ring")
    print(f"    {agent['name']}'s web phone rings ({ring['device']})")
    view = current(me) or {}
    print(
        f"    the panel shows: state={view.get('state')}, "
        f"screen pop={json.dumps(view.get('screenPop'), ensure_ascii=False)}"
    )

    step(f"{agent['name']} answers")
    call("POST", f"{ACS}/devices/answer", json={"device": ring["device"]})
    view = wait_for(
        lambda: (c := current(me)) and c["state"] == "connected" and c, "the call to connect"
    )
    print(f"    connected; caller identified: {view['identification']}")

    step("Notes typed during the call are saved as they are typed")
    call(
        "PUT",
        f"{APP}/me/calls/{view['callId']}/notes",
        headers=me,
        json={"notes": "Asked for a quote for 20 seats; call back Friday."},
    )

    step("The customer hangs up: the Phone Call activity is created")
    call("POST", f"{ACS}/participants/hang-up", json={"participant": CONTACT_NUMBER})
    wait_for(lambda: len(activities()) > before, "the activity")

    step(f"Click-to-dial from D365 to an unknown number {UNKNOWN_NUMBER}")
    dialled = wait_for(lambda: dial(me, UNKNOWN_NUMBER), "the agent to be free to dial")
    ring = wait_for(lambda: ringing(agent["acsUserId"]), "the agent's own leg to ring")
    call("POST", f"{ACS}/devices/answer", json={"device": ring["device"]})
    ring = wait_for(lambda: ringing(UNKNOWN_NUMBER), "the customer's phone to ring")
    call("POST", f"{ACS}/devices/answer", json={"device": ring["device"]})
    wait_for(lambda: (c := current(me)) and c["state"] == "connected", "the call to connect")
    print(f"    connected (call {dialled['callId']}); the customer hangs up")
    call("POST", f"{ACS}/participants/hang-up", json={"participant": UNKNOWN_NUMBER})
    wait_for(lambda: len(activities()) >= before + 2, "the second activity")

    step("The Phone Call activities in D365 (the Dataverse emulator)")
    shown = (
        "subject",
        "description",
        "phonenumber",
        "directioncode",
        "actualstart",
        "actualend",
        "actualdurationminutes",
        "_regardingobjectid_value",
        "_ownerid_value",
        "statecode",
    )
    for activity in activities()[before:]:
        print(
            json.dumps(
                {k: activity.get(k) for k in ("activityid", *shown)}, indent=2, ensure_ascii=False
            )
        )
    print("\nThe recording link and queue metrics follow within ENRICH_DELAY_SECONDS.")
    print("Demo finished.")


if __name__ == "__main__":
    main()
