"""The command line of `make run`: which port each part listens on (0 = any free one), where
state goes; and the error that stops a start-up with a message instead of a traceback."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emulators.common.processes import REPO_ROOT

LOOPBACK = "127.0.0.1"
DEFAULT_AZURITE_PORTS = (10000, 10001, 10002)


@dataclass(frozen=True)
class Ports:
    """Where each part listens. 0 in a flag means "pick a free port"; these are resolved."""

    host: int
    acs: int
    entra: int
    dataverse: int
    graph: int
    blob: int
    queue: int
    table: int
    acs_devices: int

    def named(self) -> list[tuple[str, str, int]]:
        """(what, flag, port) for every port, for messages that say which one is taken."""
        return [
            ("Functions host", "--host-port", self.host),
            ("ACS emulator", "--acs-port", self.acs),
            ("Entra ID emulator", "--entra-port", self.entra),
            ("Dataverse emulator", "--dataverse-port", self.dataverse),
            ("Graph emulator", "--graph-port", self.graph),
            ("Azurite blob", "--azurite-ports", self.blob),
            ("Azurite queue", "--azurite-ports", self.queue),
            ("Azurite table", "--azurite-ports", self.table),
            ("ACS browser device API", "--acs-device-port", self.acs_devices),
        ]


@dataclass(frozen=True)
class Options:
    """The command line, resolved (free ports picked, paths absolute)."""

    ports: Ports
    state_dir: Path
    settings_file: Path
    follow_logs: bool
    ready_timeout: float


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {value}")
    return value


def _three_ports(text: str) -> tuple[int, int, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            "give three ports: blob,queue,table (e.g. 10000,10001,10002)"
        )
    first, second, third = (_port(p) for p in parts)
    return first, second, third


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.run",
        description="Start the whole product locally: Azurite, the ACS, Entra ID, Dataverse and "
        "Graph emulators and the Functions host. Ctrl-C stops everything.",
    )
    parser.add_argument("--host-port", type=_port, default=7071, help="Functions host (HTTP)")
    parser.add_argument("--acs-port", type=_port, default=7443, help="ACS emulator (HTTPS)")
    parser.add_argument("--entra-port", type=_port, default=7444, help="Entra ID emulator (HTTPS)")
    parser.add_argument(
        "--dataverse-port", type=_port, default=7445, help="Dataverse emulator (HTTPS)"
    )
    parser.add_argument(
        "--graph-port", type=_port, default=7446, help="Microsoft Graph emulator (HTTPS)"
    )
    parser.add_argument(
        "--acs-device-port",
        type=_port,
        default=7447,
        help="the ACS emulator's browser device API for the web phone panel (HTTP)",
    )
    parser.add_argument(
        "--azurite-ports",
        type=_three_ports,
        default=DEFAULT_AZURITE_PORTS,
        help="Azurite blob,queue,table ports (default 10000,10001,10002)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=REPO_ROOT / ".local",
        help="CA, function keys, timer state and logs (default: .local in the repository)",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=REPO_ROOT / "local.settings.json",
        help="the app settings (Values); the environment wins over them, as in the host",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="do not copy the host's log to the terminal"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=90.0,
        help="seconds to wait for /api/health to answer 200 (default 90)",
    )
    a = parser.parse_args(argv)
    wanted = [
        a.host_port,
        a.acs_port,
        a.entra_port,
        a.dataverse_port,
        a.graph_port,
        *a.azurite_ports,
        a.acs_device_port,
    ]
    fixed = [p for p in wanted if p]
    if len(set(fixed)) != len(fixed):
        parser.error(f"each service needs its own port, got {wanted}")
    taken = set(fixed)
    resolved: list[int] = []
    for port in wanted:
        if port == 0:
            port = _free_port(taken)
            taken.add(port)
        resolved.append(port)
    return Options(
        ports=Ports(*resolved),
        state_dir=a.state_dir.resolve(),
        settings_file=a.settings.resolve(),
        follow_logs=not a.quiet,
        ready_timeout=a.ready_timeout,
    )


class StartError(RuntimeError):
    """Start-up cannot go on; the message says why (and what to do), without a traceback."""


def port_free(port: int) -> bool:
    """True if a server could listen on 127.0.0.1:port now (SO_REUSEADDR as the servers set)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
            s.listen(1)
        except OSError:
            return False
    return True


def check_ports(ports: Ports) -> None:
    taken = [(what, flag, port) for what, flag, port in ports.named() if not port_free(port)]
    if taken:
        lines = [f"port {port} ({what}) is already in use" for what, _, port in taken]
        flags = sorted({flag for _, flag, _ in taken})
        holder = "it" if len(taken) == 1 else "them"
        raise StartError(
            "; ".join(lines)
            + f". Stop whatever holds {holder} (another `make run`?) or choose other ports with "
            f"{', '.join(flags)} (0 = any free port)."
        )
