"""`make bench`: the performance figures, one `<name>: <value>` line each (budgets in docs)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_RUNS", "9"))


def _import_seconds(module: str, env: dict[str, str]) -> float:
    """Wall time of a fresh interpreter importing `module`, minus a bare interpreter's start."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def cold_start_ratio() -> float:
    """Median over fresh processes of import function_app / import azure.functions."""
    env = {
        **os.environ,
        **json.loads((ROOT / "local.settings.json").read_text())["Values"],
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    # Warm the bytecode caches once so both sides are measured the same way.
    _import_seconds("function_app", env)
    ratios = []
    for _ in range(RUNS):
        base = _import_seconds("azure.functions", env)
        app = _import_seconds("function_app", env)
        ratios.append(app / base)
    return statistics.median(ratios)


def main() -> None:
    started = time.monotonic()
    print(
        f"cold_start_ratio: {cold_start_ratio():.2f}  (budget <= 1.25; "
        f"median of {RUNS} fresh processes)"
    )
    print(f"bench_seconds: {time.monotonic() - started:.1f}")


if __name__ == "__main__":
    main()
