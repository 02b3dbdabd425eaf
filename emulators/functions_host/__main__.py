"""CLI: `python -m emulators.functions_host --app-dir DIR [--port 7071] ...` (see README)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import traceback
from pathlib import Path
from types import FrameType

from .host import FunctionsHost, HostOptions


def parse_args(argv: list[str] | None = None) -> HostOptions:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.functions_host",
        description="Local Azure Functions host (Python v2 model).",
    )
    parser.add_argument(
        "--app-dir", required=True, type=Path, help="folder with function_app.py and host.json"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="local.settings.json: Values become environment variables "
        "(a variable already set wins)",
    )
    parser.add_argument(
        "--keys-file",
        type=Path,
        default=None,
        help="JSON {masterKey, functionKeys}; created with random keys if missing "
        "(default STATE_DIR/keys.json)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="timer schedule status (default APP_DIR/.local/functions_host)",
    )
    parser.add_argument(
        "--cert", type=Path, default=None, help="PEM certificate chain: serve HTTPS"
    )
    parser.add_argument("--key", type=Path, default=None, help="PEM private key for --cert")
    a = parser.parse_args(argv)
    return HostOptions(
        app_dir=a.app_dir,
        host=a.host,
        port=a.port,
        settings_file=a.settings,
        keys_file=a.keys_file,
        state_dir=a.state_dir,
        cert_file=a.cert,
        key_file=a.key,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host = FunctionsHost(options, stop)
    try:
        host.start()
    except (ValueError, OSError) as exc:
        # A configuration error (the app's own settings check raises ValueError): its message
        # names what is wrong; a traceback would only bury it.
        print(f"Startup failed: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:
        traceback.print_exc()
        print(f"Startup failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    while not stop.wait(0.5):
        pass
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
