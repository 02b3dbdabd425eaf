"""The host: reads the configuration, indexes the functions, runs the listeners, serves HTTP."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.common.server import RunningServer

from .config import HostConfig, load_host_json, load_settings
from .cors import CorsPolicy, load_cors
from .http_app import HostWSGI, manual_input, run_in_background
from .invoker import InvocationFailed, Invoker
from .keys import HostKeys, load_or_create_keys
from .loader import (
    FunctionSpec,
    HttpTrigger,
    QueueTrigger,
    TimerTrigger,
    import_function_app,
    index_functions,
)
from .queues import QueuePoller
from .timers import ScheduleStatusStore, TimerRunner

log = logging.getLogger("functions_host")

HOST_VERSION = "4.0.0-local"
MANUAL_REASON = "This function was programmatically called via the host APIs."
# How long start-up waits for Storage to accept the trigger queues' creation.
QUEUE_PREPARE_SECONDS = 10.0
# On stop, how long running invocations get to finish (a queue message is then completed).
DRAIN_SECONDS = 3.0


@dataclass(frozen=True)
class HostOptions:
    """The command line, resolved: where the app is and where the host keeps its files."""

    app_dir: Path
    host: str = "127.0.0.1"
    port: int = 7071
    settings_file: Path | None = None
    keys_file: Path | None = None
    state_dir: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def resolved_state_dir(self) -> Path:
        return self.state_dir or self.app_dir / ".local" / "functions_host"

    @property
    def resolved_keys_file(self) -> Path:
        return self.keys_file or self.resolved_state_dir / "keys.json"


def configure_logging(level: int) -> None:
    """Host and app logs to stderr; the app's loggers obey host.json's default level."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ [%(levelname)s] %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("functions_host").setLevel(logging.INFO)
    # The Storage SDK logs every poll at INFO; keep the host's own polling out of the log.
    logging.getLogger("azure").setLevel(max(level, logging.WARNING))


class FunctionsHost:
    """Start with `start()` (raises on any configuration problem), end with `stop()`."""

    def __init__(self, options: HostOptions, stop_event: threading.Event | None = None) -> None:
        self.options = options
        self.state = "Default"
        self.functions: list[FunctionSpec] = []
        self.keys: HostKeys
        self.cors: CorsPolicy | None = None
        self.invoker: Invoker
        self.url = ""
        self._stop = stop_event or threading.Event()
        self._started = time.monotonic()
        self._server: RunningServer | None = None
        self._serving = False
        self._timers: dict[str, TimerRunner] = {}
        self._pollers: list[QueuePoller] = []
        app_dir = str(options.app_dir.resolve()).encode()
        self.host_id = "local-" + hashlib.sha256(app_dir).hexdigest()[:26]

    def start(self) -> None:
        options = self.options
        app_dir = options.app_dir.resolve()
        config: HostConfig = load_host_json(app_dir)
        configure_logging(config.log_level)
        self.state = "Initialized"
        applied = load_settings(options.settings_file)
        if applied:
            log.info("App settings from %s: %s", options.settings_file, ", ".join(sorted(applied)))
        self.cors = load_cors(options.settings_file)
        self.keys = load_or_create_keys(options.resolved_keys_file)
        ssl_context = self._ssl_context()
        wsgi = HostWSGI(self)
        # Bind now (so the port is known to the app as WEBSITE_HOSTNAME); serve once running.
        self._server = RunningServer(wsgi, options.host, options.port, ssl_context)
        self.url = self._server.url
        os.environ.setdefault("WEBSITE_HOSTNAME", f"{options.host}:{self._server.port}")
        self.state = "Starting"
        app = import_function_app(app_dir)
        self.functions = index_functions(app, config.route_prefix, app_dir)
        wsgi.set_functions(self.functions)
        self.invoker = Invoker()
        log.info("Worker thread pool: %d threads", self.invoker.thread_count)
        store = ScheduleStatusStore(options.resolved_state_dir)
        for spec in self.functions:
            if isinstance(spec.trigger, TimerTrigger):
                self._timers[spec.name] = TimerRunner(spec, self.invoker, store, self._stop)
            elif isinstance(spec.trigger, QueueTrigger):
                self._pollers.append(QueuePoller(spec, self.invoker, config.queues, self._stop))
        self._log_functions(config)
        for poller in self._pollers:
            poller.prepare(QUEUE_PREPARE_SECONDS)
        for timer in self._timers.values():
            timer.start()
        for poller in self._pollers:
            poller.start()
        self._server.start()
        self._serving = True
        self.state = "Running"
        log.info("Host started (%d functions). Listening on %s", len(self.functions), self.url)

    def _ssl_context(self) -> ssl.SSLContext | None:
        cert, key = self.options.cert_file, self.options.key_file
        if not cert and not key:
            return None
        if not (cert and key):
            raise ValueError("--cert and --key must be given together")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def _log_functions(self, config: HostConfig) -> None:
        lines = []
        for spec in self.functions:
            trigger = spec.trigger
            if isinstance(trigger, HttpTrigger):
                methods = ",".join(sorted(trigger.methods)) if trigger.methods else "all methods"
                lines.append(
                    f"{spec.name}: [{methods}] {self.url}{trigger.public_path} "
                    f"(authLevel {trigger.auth_level})"
                )
            elif isinstance(trigger, TimerTrigger):
                timer = self._timers[spec.name]
                lines.append(
                    f"{spec.name}: timerTrigger schedule '{trigger.expression}' "
                    f"(runOnStartup {trigger.run_on_startup}, useMonitor "
                    f"{trigger.use_monitor}), next {timer.next_occurrence().isoformat()}"
                )
            elif isinstance(trigger, QueueTrigger):
                lines.append(
                    f"{spec.name}: queueTrigger queue '{trigger.queue_name}' "
                    f"(connection '{trigger.connection_name}')"
                )
        log.info("Functions:\n%s", "\n".join(f"    {line}" for line in lines) or "    (none)")
        q = config.queues
        if self._pollers:
            log.info(
                "Queues: batchSize %d, newBatchThreshold %d, maxDequeueCount %d, "
                "visibilityTimeout %s, maxPollingInterval %s, messageEncoding %s",
                q.batch_size,
                q.new_batch_threshold,
                q.max_dequeue_count,
                q.visibility_timeout,
                q.max_polling_interval,
                q.message_encoding,
            )

    def status(self) -> dict[str, Any]:
        return {
            "id": self.host_id,
            "state": self.state,
            "version": HOST_VERSION,
            "versionDetails": f"{HOST_VERSION} (local emulator, Python {sys.version.split()[0]})",
            "instanceId": self.host_id,
            "computerName": socket.gethostname(),
            "processUptime": int((time.monotonic() - self._started) * 1000),
        }

    def invoke_manually(self, spec: FunctionSpec, text: str) -> None:
        """The admin API's run-now: in the background (the API answers 202 at once)."""
        if isinstance(spec.trigger, TimerTrigger):
            self._timers[spec.name].invoke_now(MANUAL_REASON)
            return
        value = manual_input(spec, text, self.url)

        def run() -> None:
            with contextlib.suppress(InvocationFailed):  # logged by the invoker
                self.invoker.invoke(spec, value, MANUAL_REASON)

        run_in_background(run, f"manual-{spec.name}")

    def stop(self) -> None:
        """Stop listeners, timers and the server; give running invocations a short grace."""
        log.info("Stopping host")
        self.state = "Stopping"
        self._stop.set()
        if self._server is not None and self._serving:
            self._server.stop()
        deadline = time.monotonic() + DRAIN_SECONDS
        for poller in self._pollers:
            poller.join(max(deadline - time.monotonic(), 0.1))
            if not poller.drain(max(deadline - time.monotonic(), 0.1)):
                log.warning(
                    "Queue '%s': invocations still running at stop (their messages "
                    "reappear after the processing visibility timeout)",
                    poller.trigger.queue_name,
                )
        for timer in self._timers.values():
            timer.join(max(deadline - time.monotonic(), 0.1))
        if hasattr(self, "invoker"):
            self.invoker.close()
        self.state = "Stopped"
        log.info("Host stopped")
