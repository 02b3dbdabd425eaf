"""The azd hooks, run as azd runs them (sh, the azd environment in the process environment),
with stand-ins for the `az` and `azd` commands on PATH and the app's health endpoint on loopback."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


class Health:
    """/api/health answering the queued (status, content type) pairs, then the last one."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers = answers
        self.seen = 0
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, kind = health.answers[min(health.seen, len(health.answers) - 1)]
                health.seen += 1
                body = b'{"status": "ok"}' if "json" in kind else b"<html>starting</html>"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """`az` and `azd` that record their arguments; azd keeps its environment in a JSON file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "az").write_text(
        '#!/bin/sh\necho "$*" >> "$FAKE_LOG/az.log"\nprintf "+358101000100\\n+358101000201\\n"\n'
    )
    (bin_dir / "azd").write_text(
        '#!/bin/sh\necho "$*" >> "$FAKE_LOG/azd.log"\nexec python3 "$FAKE_LOG/azd_env.py" "$@"\n'
    )
    (tmp_path / "azd_env.py").write_text(
        "import json, os, sys\n"
        "path = os.path.join(os.environ['FAKE_LOG'], 'env.json')\n"
        "env = json.load(open(path)) if os.path.exists(path) else {}\n"
        "_, verb, *rest = sys.argv[1:]\n"
        "if verb == 'get-value':\n"
        "    if rest[0] not in env: sys.exit(1)\n"
        "    print(env[rest[0]])\n"
        "elif verb == 'set':\n"
        "    env[rest[0]] = rest[1]; json.dump(env, open(path, 'w'))\n"
    )
    for tool in ("az", "azd"):
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def run_hook(name: str, fake_bin: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "FAKE_LOG": str(fake_bin.parent),
        "HOME": str(fake_bin.parent),
        **env,
    }
    return subprocess.run(
        ["sh", f"infra/hooks/{name}.sh"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def azd_outputs() -> Iterator[dict[str, str]]:
    yield {
        "AZURE_RESOURCE_GROUP": "rg-d365phone-test",
        "FUNCTION_APP_NAME": "func-d365phone-abc",
        "ACS_EVENTS_TOPIC_NAME": "evgt-d365phone-abc",
        "POSTDEPLOY_WAIT_SECONDS": "0",
        "POSTDEPLOY_WAIT_ATTEMPTS": "10",
    }


def test_postdeploy_subscribes_the_events_only_once_the_code_answers(
    fake_bin: Path, azd_outputs: dict[str, str]
) -> None:
    health = Health([(503, "text/html"), (503, "text/html"), (503, "application/json")])
    done = run_hook("postdeploy", fake_bin, PUBLIC_BASE_URL=health.url, **azd_outputs)
    assert done.returncode == 0, done.stderr
    assert health.seen == 3  # the platform's HTML answers were waited out; our 503 JSON counts
    [call] = (fake_bin.parent / "az.log").read_text().splitlines()
    args = shlex.split(call)
    assert args[:3] == ["deployment", "group", "create"]
    assert args[args.index("--template-file") + 1] == "infra/events.bicep"
    assert args[args.index("--resource-group") + 1] == "rg-d365phone-test"
    assert "functionAppName=func-d365phone-abc" in args
    assert "systemTopicName=evgt-d365phone-abc" in args
    assert "+358101000100" in done.stdout


def test_postdeploy_gives_up_without_subscribing_when_the_code_never_answers(
    fake_bin: Path, azd_outputs: dict[str, str]
) -> None:
    health = Health([(503, "text/html")])
    done = run_hook("postdeploy", fake_bin, PUBLIC_BASE_URL=health.url, **azd_outputs)
    assert done.returncode == 1
    assert health.seen == 10
    assert not (fake_bin.parent / "az.log").exists()


def test_preprovision_names_what_is_missing(fake_bin: Path) -> None:
    done = run_hook("preprovision", fake_bin)
    assert done.returncode == 1
    assert "DATAVERSE_URL DATAVERSE_CLIENT_ID API_AUDIENCE PANEL_CLIENT_ID" in done.stderr


def test_preprovision_makes_the_callback_secret_once(fake_bin: Path) -> None:
    env_file = fake_bin.parent / "env.json"
    env_file.write_text(
        json.dumps(
            {
                "DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
                "DATAVERSE_CLIENT_ID": "c",
                "API_AUDIENCE": "a",
                "PANEL_CLIENT_ID": "p",
            }
        )
    )
    assert run_hook("preprovision", fake_bin).returncode == 0
    first = json.loads(env_file.read_text())["CALLBACK_SECRET"]
    assert len(first) >= 32
    assert run_hook("preprovision", fake_bin).returncode == 0
    assert json.loads(env_file.read_text())["CALLBACK_SECRET"] == first
