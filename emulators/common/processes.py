"""Starting and stopping child processes (Azurite, the emulators, the host) without orphans."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft; not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll `check` until it is true or the deadline passes (then TimeoutError naming `what`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready within {timeout:.0f}s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def spawn(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    log_path: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group, so stop() can end it and all its children."""
    out = log_path.open("ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(
        list(args), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


class Azurite:
    """Azurite (from node_modules, pinned) on three loopback ports, state in memory."""

    def __init__(self, blob_port: int, queue_port: int, table_port: int) -> None:
        self.blob_port, self.queue_port, self.table_port = blob_port, queue_port, table_port
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def on_free_ports(cls) -> Azurite:
        return cls(free_port(), free_port(), free_port())

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{AZURITE_ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{AZURITE_ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{AZURITE_ACCOUNT};"
        )

    def start(
        self, log_path: Path | None = None, timeout: float = 60, extra_args: Sequence[str] = ()
    ) -> Azurite:
        """`extra_args`: e.g. --oauth basic --cert ... --key ... (Entra tokens over HTTPS)."""
        binary = REPO_ROOT / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            raise RuntimeError("Azurite is not installed: run `make setup` (npm ci)")
        self.proc = spawn(
            [
                str(binary),
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--silent",
                "--loose",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.blob_port),
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                str(self.queue_port),
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(self.table_port),
                *extra_args,
            ],
            log_path=log_path,
        )
        wait_until(
            lambda: all(port_open(p) for p in (self.blob_port, self.queue_port, self.table_port)),
            timeout,
            "Azurite",
        )
        return self

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)
