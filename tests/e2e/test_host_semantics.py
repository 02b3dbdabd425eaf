"""The local Functions host behaves as the real one: routes, keys, queues, timers, start, stop."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from emulators.common.processes import REPO_ROOT, Azurite, wait_until
from emulators.functions_host.launcher import HostProcess
from tests.fixtures.host import HostFactory

pytestmark = pytest.mark.e2e

APP_DIR = Path(__file__).parent / "hostapp"
SETTINGS = APP_DIR / "local.settings.json"


def read_records(record_dir: Path, function: str) -> list[dict[str, Any]]:
    path = record_dir / f"{function}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def app_env(record_dir: Path, azurite: Azurite, **extra: str) -> dict[str, str]:
    record_dir.mkdir(parents=True, exist_ok=True)
    suffix = uuid.uuid4().hex[:10]
    return {
        "HOSTAPP_RECORD_DIR": str(record_dir),
        "AzureWebJobsStorage": azurite.connection_string,
        "OK_QUEUE": f"ok-{suffix}",
        "FAIL_QUEUE": f"fail-{suffix}",
        # Also in local.settings.json (as 10): the process environment must win.
        "HOSTAPP_LIMIT": "7",
        **extra,
    }


class Running:
    """The module's shared host, its environment and where its app records invocations."""

    def __init__(self, host: HostProcess, env: dict[str, str], record_dir: Path) -> None:
        self.host, self.env, self.record_dir = host, env, record_dir

    def records(self, function: str) -> list[dict[str, Any]]:
        return read_records(self.record_dir, function)

    def queue(self, name: str, connection_string: str) -> QueueClient:
        return QueueClient.from_connection_string(
            connection_string,
            name,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )


@pytest.fixture(scope="module")
def running(
    module_functions_host: HostFactory, azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> Running:
    record_dir = tmp_path_factory.mktemp("hostapp-records")
    env = app_env(record_dir, azurite)
    host = module_functions_host(APP_DIR, env, settings_file=SETTINGS)
    return Running(host, env, record_dir)


def url(running: Running, path: str) -> str:
    return running.host.url + path


# --- keys and admin status -------------------------------------------------------------------


def test_keys_file_is_created_and_status_needs_the_master_key(running: Running) -> None:
    keys = json.loads(running.host.keys_file.read_text(encoding="utf-8"))
    master, function_key = keys["masterKey"], keys["functionKeys"]["default"]
    assert len(master) >= 40 and len(function_key) >= 40 and master != function_key

    status = url(running, "/admin/host/status")
    assert requests.get(status, timeout=5).status_code == 401
    assert (
        requests.get(status, headers={"x-functions-key": function_key}, timeout=5).status_code
        == 401
    )
    ok = requests.get(status, headers={"x-functions-key": master}, timeout=5)
    assert ok.status_code == 200
    assert ok.json()["state"] == "Running"


# --- HTTP --------------------------------------------------------------------------------------


def test_function_level_route_needs_a_function_key(running: Running) -> None:
    target = url(running, "/v1/secure/1")
    before = len(running.records("secure"))

    no_key = requests.get(target, timeout=5)
    assert no_key.status_code == 401
    assert no_key.content == b""
    wrong = requests.get(target, headers={"x-functions-key": "not-a-key"}, timeout=5)
    assert wrong.status_code == 401
    assert len(running.records("secure")) == before, "an unauthorised call reached the function"

    header = requests.get(target, headers={"x-functions-key": running.host.function_key}, timeout=5)
    assert header.status_code == 200
    query = requests.get(target, params={"code": running.host.function_key}, timeout=5)
    assert query.status_code == 200
    master = requests.get(target, headers={"x-functions-key": running.host.master_key}, timeout=5)
    assert master.status_code == 200
    assert len(running.records("secure")) == before + 3


def test_route_and_query_params_and_settings_reach_the_function(running: Running) -> None:
    key = {"x-functions-key": running.host.function_key}
    r = requests.get(url(running, "/v1/secure/42/blue?x=1&x=2&y=z"), headers=key, timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    seen = r.json()
    assert seen["method"] == "GET"
    assert seen["route_params"] == {"id": "42", "label": "blue"}
    assert seen["params"] == {"x": "1,2", "y": "z"}
    assert seen["url"].endswith("/v1/secure/42/blue?x=1&x=2&y=z")
    assert seen["greeting"] == "hello from local.settings.json"
    assert seen["limit"] == 7, "a variable in the process environment must win over the file"

    optional = requests.get(url(running, "/v1/secure/42"), headers=key, timeout=5)
    assert optional.json()["route_params"] == {"id": "42"}
    assert requests.get(url(running, "/v1/secure/abc"), headers=key, timeout=5).status_code == 404


def test_undeclared_method_prefix_and_unknown_routes_are_404(running: Running) -> None:
    key = {"x-functions-key": running.host.function_key}
    before = len(running.records("secure"))
    post = requests.post(url(running, "/v1/secure/1"), headers=key, timeout=5)
    assert post.status_code == 404
    assert len(running.records("secure")) == before, "a POST reached a GET-only function"
    assert requests.get(url(running, "/api/secure/1"), headers=key, timeout=5).status_code == 404
    unknown = requests.get(url(running, "/v1/nothing-here"), headers=key, timeout=5)
    assert unknown.status_code == 404
    assert unknown.content == b""


def test_anonymous_catch_all_route_and_response_rendering(running: Running) -> None:
    get = requests.get(url(running, "/v1/public/a/b/c"), timeout=5)
    assert get.status_code == 200
    assert get.json()["rest"] == "a/b/c"

    post = requests.post(
        url(running, "/v1/public/x"),
        data=b"payload",
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )
    assert post.status_code == 201
    assert post.headers["x-hostapp"] == "yes"
    assert post.headers["Content-Type"] == "application/json"
    assert post.json() == {"rest": "x", "body": "payload", "content_type": "text/plain"}


def test_admin_auth_level_needs_the_master_key(running: Running) -> None:
    target = url(running, "/v1/admin-only")
    assert requests.get(target, timeout=5).status_code == 401
    assert (
        requests.get(
            target, headers={"x-functions-key": running.host.function_key}, timeout=5
        ).status_code
        == 401
    )
    ok = requests.get(target, headers={"x-functions-key": running.host.master_key}, timeout=5)
    assert ok.status_code == 200
    assert ok.text == "admin ok"
    assert ok.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_a_raising_function_gives_an_empty_500_and_the_host_lives_on(running: Running) -> None:
    r = requests.get(url(running, "/v1/boom"), timeout=5)
    assert r.status_code == 500
    assert r.content == b""
    wait_until(
        lambda: "RuntimeError: boom on purpose" in running.host.log_text(),
        5,
        "the traceback in the host log",
    )
    assert "Traceback" in running.host.log_text()

    # Still serving; an async function with a `context` parameter works too.
    who = requests.get(url(running, "/v1/whoami"), timeout=5)
    assert who.status_code == 200
    name, invocation_id = who.text.split()
    assert name == "whoami"
    assert uuid.UUID(invocation_id)


# --- queues ------------------------------------------------------------------------------------


def test_queue_message_is_processed_once_and_deleted(running: Running, azurite: Azurite) -> None:
    queue = running.queue(running.env["OK_QUEUE"], azurite.connection_string)
    body = f"hello-{uuid.uuid4().hex}"
    sent = queue.send_message(body)

    def mine() -> list[dict[str, Any]]:
        return [r for r in running.records("queue_ok") if r["body"] == body]

    wait_until(lambda: len(mine()) == 1, 10, "the queue message to be processed")
    (seen,) = mine()
    assert seen["id"] == sent.id
    assert seen["dequeue_count"] == 1
    assert seen["type"] == "QueueMessage"
    assert seen["insertion_time"]
    wait_until(
        lambda: queue.get_queue_properties().approximate_message_count == 0,
        10,
        "the processed message to be deleted",
    )
    assert len(mine()) == 1


def test_always_failing_message_goes_to_poison_after_max_dequeue_count(
    running: Running, azurite: Azurite
) -> None:
    name = running.env["FAIL_QUEUE"]
    queue = running.queue(name, azurite.connection_string)
    poison = running.queue(f"{name}-poison", azurite.connection_string)
    body = f"poison-{uuid.uuid4().hex}"
    queue.send_message(body)

    def poisoned() -> list[str]:
        return [str(m.content) for m in poison.peek_messages(max_messages=32)]

    wait_until(lambda: body in poisoned(), 20, "the message on the poison queue")
    wait_until(
        lambda: queue.get_queue_properties().approximate_message_count == 0,
        10,
        "the original message to be deleted",
    )
    attempts = [r["dequeue_count"] for r in running.records("queue_fail") if r["body"] == body]
    assert attempts == [1, 2, 3]  # host.json maxDequeueCount is 3
    assert poisoned().count(body) == 1


# --- timers ------------------------------------------------------------------------------------


def test_timer_fires_on_the_schedule_named_by_a_setting(running: Running) -> None:
    # TICK_SCHEDULE (local.settings.json) is "*/1 * * * * *": once a second, on the second.
    wait_until(lambda: len(running.records("tick")) >= 3, 10, "three timer runs")
    ticks = running.records("tick")
    assert all(t["past_due"] is False and t["type"] == "TimerRequest" for t in ticks)
    times = [t["at"] for t in ticks[:3]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.5 < gap < 1.6 for gap in gaps), gaps
    assert all(t % 1 < 0.5 for t in times), "runs should start just after a whole second"

    # run_on_startup: exactly one run at start, not past due.
    wait_until(lambda: len(running.records("on_start")) == 1, 5, "the run-on-startup run")
    assert running.records("on_start")[0]["past_due"] is False


def test_monitored_timer_records_its_next_occurrence(running: Running) -> None:
    status_file = running.host.state_dir / "timers" / "yearly.json"
    wait_until(status_file.exists, 5, "the yearly timer's schedule status")
    status = json.loads(status_file.read_text(encoding="utf-8"))
    next_run = datetime.fromisoformat(status["Next"])
    now = datetime.now(UTC)
    assert (next_run.month, next_run.day, next_run.hour) == (1, 1, 0)
    assert now < next_run <= now + timedelta(days=366)
    assert running.records("yearly") == [], "a first start is not a missed occurrence"


def test_admin_api_runs_a_timer_now_and_needs_the_master_key(running: Running) -> None:
    target = url(running, "/admin/functions/yearly")
    assert requests.post(target, json={"input": ""}, timeout=5).status_code == 401
    assert (
        requests.post(
            target,
            json={"input": ""},
            timeout=5,
            headers={"x-functions-key": running.host.function_key},
        ).status_code
        == 401
    )
    master = {"x-functions-key": running.host.master_key}
    assert (
        requests.post(
            url(running, "/admin/functions/nope"), json={}, headers=master, timeout=5
        ).status_code
        == 404
    )
    assert requests.post(target, headers=master, timeout=5).status_code == 400  # no JSON body
    assert running.records("yearly") == []

    accepted = running.host.invoke("yearly")
    assert accepted.status_code == 202
    wait_until(lambda: len(running.records("yearly")) == 1, 5, "the manual run")
    assert running.records("yearly")[0]["past_due"] is False


def test_missed_occurrence_runs_once_past_due_at_start(
    functions_host: HostFactory, azurite: Azurite, tmp_path: Path
) -> None:
    record_dir = tmp_path / "records"
    state_dir = tmp_path / "state"
    (state_dir / "timers").mkdir(parents=True)
    missed = "2020-01-01T00:00:00+00:00"
    # As if the host last ran in 2019: the 2020-01-01 occurrence was missed.
    (state_dir / "timers" / "yearly.json").write_text(
        json.dumps(
            {
                "Last": "2019-01-01T00:00:00+00:00",
                "Next": missed,
                "LastUpdated": "2019-01-01T00:00:01+00:00",
            }
        ),
        encoding="utf-8",
    )

    host = functions_host(
        APP_DIR, app_env(record_dir, azurite), settings_file=SETTINGS, state_dir=state_dir
    )

    wait_until(lambda: len(read_records(record_dir, "yearly")) == 1, 10, "the past-due run")
    status_file = state_dir / "timers" / "yearly.json"

    def status_moved_on() -> bool:
        status = json.loads(status_file.read_text(encoding="utf-8"))
        return datetime.fromisoformat(status["Next"]) > datetime.now(UTC)

    wait_until(status_moved_on, 5, "the schedule status to move to the next occurrence")
    (run,) = read_records(record_dir, "yearly")
    assert run["past_due"] is True
    assert run["schedule_status"]["Next"] == missed
    assert json.loads(status_file.read_text(encoding="utf-8"))["Last"] == missed
    assert "past due" in host.log_text()


# --- start-up and shut-down -------------------------------------------------------------------


def run_cli(env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "emulators.functions_host",
            "--app-dir",
            str(APP_DIR),
            "--port",
            "0",
            "--settings",
            str(SETTINGS),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_invalid_app_settings_fail_startup_with_one_clear_line(tmp_path: Path) -> None:
    done = run_cli({"HOSTAPP_RECORD_DIR": "", "HOSTAPP_LIMIT": "abc"}, tmp_path)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1] == (
        "Startup failed: Invalid settings: HOSTAPP_RECORD_DIR is missing; "
        "HOSTAPP_LIMIT must be an integer, got 'abc'"
    )
    assert "Traceback" not in done.stderr


def test_unresolvable_schedule_setting_fails_startup(tmp_path: Path) -> None:
    done = run_cli({"HOSTAPP_RECORD_DIR": str(tmp_path), "TICK_SCHEDULE": ""}, tmp_path)
    assert done.returncode == 1
    assert "Startup failed:" in done.stderr
    assert "%TICK_SCHEDULE%" in done.stderr


def test_sigterm_stops_the_host_and_leaves_no_process(
    functions_host: HostFactory, azurite: Azurite, tmp_path: Path
) -> None:
    host = functions_host(APP_DIR, app_env(tmp_path / "records", azurite), settings_file=SETTINGS)
    assert host.proc is not None
    started = time.monotonic()
    os.kill(host.pid, signal.SIGTERM)
    assert host.proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.killpg(host.pid, 0)  # the whole process group is gone
    assert "Host stopped" in host.log_text()
