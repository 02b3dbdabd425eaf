"""Cold start: importing the app loads no SDK client (they are built on first use), and none
of the app's models either: the JSON settings' (parsed on first use) and the queue messages'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
HEAVY = [
    "azure.data.tables",
    "azure.storage.queue",
    "azure.communication.callautomation",
    "msal",
    "requests",
    "jwt",
    "cryptography",
    "phonenumbers",
]
MODELS = [
    "shared.domain.directory",
    "shared.domain.callback_lists",
    "shared.domain.enterprise_users",
    "shared.domain.destinations",
    "shared.domain.prompts",
    "shared.messages",
    "shared.views",
    "functions.bodies",
]


def loaded_after_importing_function_app(modules: list[str]) -> list[str]:
    env = {**os.environ, **json.loads((ROOT / "local.settings.json").read_text())["Values"]}
    code = (
        "import sys, json, function_app; "
        f"print(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_importing_function_app_loads_no_sdk() -> None:
    assert loaded_after_importing_function_app(HEAVY) == []


def test_importing_function_app_loads_no_model_of_settings_views_or_messages() -> None:
    assert loaded_after_importing_function_app(MODELS) == []
