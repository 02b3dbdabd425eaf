"""Start the host CLI as a child process (own process group) and wait until it is Running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import requests

from emulators.common.processes import REPO_ROOT, free_port, spawn, stop
from emulators.common.tls import LocalTLS


class HostStartError(RuntimeError):
    """The host exited or did not become Running in time; the message carries its log's tail."""


class HostProcess:
    """The local Functions host in a child process.

    `start()` waits for `GET /admin/host/status` to say Running; then `url`, `master_key`,
    `function_key` and `log_path` are usable. `stop()` SIGTERMs the process group.
    """

    def __init__(
        self,
        app_dir: Path,
        *,
        work_dir: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        settings_file: Path | None = None,
        keys_file: Path | None = None,
        state_dir: Path | None = None,
        tls: LocalTLS | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.app_dir = app_dir
        self.work_dir = work_dir
        self.port = port or free_port()
        self.env_overrides = dict(env or {})
        self.settings_file = settings_file
        self.keys_file = keys_file or work_dir / "keys.json"
        self.state_dir = state_dir or work_dir / "state"
        self.tls = tls
        self.host = host
        self.log_path = work_dir / "host.log"
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        # What a client of this host passes as `verify=` (the local CA when serving HTTPS).
        self.verify: str | bool = str(tls.ca_path) if tls else True
        self.proc: subprocess.Popen[bytes] | None = None
        self.master_key = ""
        self.function_key = ""

    def command(self) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "emulators.functions_host",
            "--app-dir",
            str(self.app_dir),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--keys-file",
            str(self.keys_file),
            "--state-dir",
            str(self.state_dir),
        ]
        if self.settings_file:
            args += ["--settings", str(self.settings_file)]
        if self.tls:
            args += ["--cert", str(self.tls.cert_path), "--key", str(self.tls.key_path)]
        return args

    def start(self, timeout: float = 30) -> HostProcess:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env_overrides, "PYTHONUNBUFFERED": "1"}
        self.proc = spawn(self.command(), env=env, cwd=REPO_ROOT, log_path=self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HostStartError(
                    f"the host exited with code {self.proc.returncode}:\n{self.log_tail()}"
                )
            if self._running():
                return self
            time.sleep(0.1)
        self.stop()
        raise HostStartError(f"the host was not Running within {timeout:.0f}s:\n{self.log_tail()}")

    def _running(self) -> bool:
        if not self.master_key:
            try:
                keys = json.loads(self.keys_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return False  # the host writes the file early in its start-up
            self.master_key = keys["masterKey"]
            self.function_key = next(iter(keys.get("functionKeys", {}).values()), "")
        try:
            r = requests.get(
                f"{self.url}/admin/host/status",
                timeout=2,
                verify=self.verify,
                headers={"x-functions-key": self.master_key},
            )
        except requests.RequestException:
            return False
        return r.status_code == 200 and r.json().get("state") == "Running"

    def invoke(self, function: str, input_text: str = "") -> requests.Response:
        """`POST /admin/functions/{name}` with the master key (run a function now)."""
        return requests.post(
            f"{self.url}/admin/functions/{function}",
            json={"input": input_text},
            headers={"x-functions-key": self.master_key},
            timeout=10,
            verify=self.verify,
        )

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM the process group (SIGKILL after `timeout`); return the exit code."""
        if self.proc is None:
            return None
        stop(self.proc, timeout)
        return self.proc.returncode

    def __enter__(self) -> HostProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
