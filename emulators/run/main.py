"""`make run` (`python -m emulators.run`): start everything, print the banner and "Ready.",
follow the host's log until Ctrl-C (or SIGTERM, SIGHUP), then stop everything."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from emulators.common.processes import Azurite
from emulators.run.banner import banner
from emulators.run.options import StartError, check_ports, parse_args
from emulators.run.platform import LocalPlatform
from emulators.run.processes import LogFollower, reap_strays
from emulators.run.settings import (
    acs_access_key,
    app_overrides,
    effective_settings,
    read_settings_file,
)


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP: stop everything and exit 0."""


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    options = parse_args(argv)
    interrupted = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Raise once: a second Ctrl-C while stopping must not cut the clean-up short.
        if not interrupted.is_set():
            interrupted.set()
            raise Interrupted(signum)

    platform: LocalPlatform | None = None
    # SIGHUP too: closing the terminal must not leave the children (own sessions) running.
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in stop_signals}
    code = 0
    try:
        file_values = read_settings_file(options.settings_file)
        merged = {**file_values, **os.environ}
        access_key = acs_access_key(merged.get("ACS_CONNECTION_STRING", ""))
        tls_dir = options.state_dir / "tls"
        settings = effective_settings(
            file_values,
            os.environ,
            # Azurite's address is known from the ports; the CA path before it exists.
            app_overrides(
                options.ports,
                tls_dir / "ca.pem",
                Azurite(
                    options.ports.blob, options.ports.queue, options.ports.table
                ).connection_string,
                access_key,
            ),
        )
        check_ports(options.ports)
        platform = LocalPlatform(options, settings, access_key, out=out)
        platform.start()
        health = platform.wait_ready()
        platform.validate_subscriptions()
        platform.subscribe_teams_calls()
        print(banner(platform, health), file=out, flush=True)
        print("Ready.", file=out, flush=True)
        assert platform.host is not None
        follower = (
            LogFollower(platform.host.log_path, "[host] ", out).start()
            if options.follow_logs
            else None
        )
        try:
            while True:
                platform.check_children()
                time.sleep(0.5)
        finally:
            if follower is not None:
                follower.stop()
    except Interrupted:
        print("\nStopping ...", file=out, flush=True)
    except StartError as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        code = 1
    except Exception:
        traceback.print_exc()
        print("make run: stopped after an unexpected error (above)", file=sys.stderr, flush=True)
        code = 1
    finally:
        # No more interrupts: the clean-up below must run to the end.
        interrupted.set()
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        if platform is not None:
            platform.stop()
        else:
            reap_strays()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code == 0:
        print("Stopped.", file=out, flush=True)
    return code
