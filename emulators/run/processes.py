"""Child processes of `make run`: ending strays, copying the host's log to the terminal."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import TextIO


def _children_of(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is `pid` (Linux /proc; empty elsewhere)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # The command name is in parentheses and may hold spaces: split after the last ')'.
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry))
    return found


def reap_strays(timeout: float = 5.0) -> None:
    """End any child still alive (one an interrupted start lost track of), with its group."""
    strays = _children_of(os.getpid())
    for pid in strays:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while strays and time.monotonic() < deadline:
        strays = [p for p in strays if _alive_child(p)]
        if strays:
            time.sleep(0.05)
    for pid in strays:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)


def _alive_child(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


class LogFollower:
    """Copies new lines of a log file to a stream, each with a prefix, until stopped."""

    def __init__(self, path: Path, prefix: str, out: TextIO) -> None:
        self.path, self.prefix, self.out = path, prefix, out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="log-follower")

    def start(self) -> LogFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as f:
                f.seek(0, os.SEEK_END)  # start-up lines are in the file; the banner said where
                pending = ""
                while not self._stop.is_set():
                    chunk = f.readline()
                    if not chunk:
                        self._stop.wait(0.2)
                        continue
                    pending += chunk
                    if pending.endswith("\n"):
                        self.out.write(self.prefix + pending)
                        self.out.flush()
                        pending = ""
        except (OSError, ValueError):
            return  # the stream or file went away while stopping
