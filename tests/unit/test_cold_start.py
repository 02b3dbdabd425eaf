"""Cold start: importing the app loads no SDK client (they are built on first use)."""

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


def test_importing_function_app_loads_no_sdk() -> None:
    env = {**os.environ, **json.loads((ROOT / "local.settings.json").read_text())["Values"]}
    code = (
        "import sys, json, function_app; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    assert json.loads(out.stdout) == []
