"""Schemathesis against the generated /api/openapi.json of the running host: every operation,
bounded examples with a fixed seed, every check on, as a signed-in agent (with the function
key for the webhooks). Zero failures: the API answers what its document says, for any input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.product import ANNA, Product

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8")
SEED = "17"


def test_the_api_conforms_to_its_document_for_generated_input(
    world: Product, tmp_path: Path
) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    before = len(world.host.log_text())  # the host is shared: only this run's lines count
    run = subprocess.run(
        [
            str(cli),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{world.host.url}/api/openapi.json",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            SEED,
            # The Functions host answers 404 (not 405) for a method a route does not take, as
            # Azure does: that one check asks for what no Functions app can answer.
            "--exclude-checks",
            "unsupported_method",
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
            "--header",
            f"Authorization: Bearer {world.token(ANNA)}",
            "--header",
            f"x-functions-key: {world.host.function_key}",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # its cache stays in the test's directory: every run starts fresh
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"},
    )
    output = run.stdout + run.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    if os.environ.get("SCHEMATHESIS_OUTPUT"):
        Path(os.environ["SCHEMATHESIS_OUTPUT"]).write_text(output)
    assert run.returncode == 0, output[-30000:]
    log = world.host.log_text()[before:]
    assert "Traceback" not in log, log[-6000:]
