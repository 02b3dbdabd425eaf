"""A TCP proxy that counts the HTTP requests passing through (for `make bench`)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading

# A request line: METHOD /path HTTP/1.1 at the start of a line. Requests inside a batch body
# name absolute URLs ("POST http://..."), so a batch counts once, as the service bills it.
_REQUEST_LINE = re.compile(rb"(?:^|\r\n)(GET|POST|PUT|PATCH|DELETE|MERGE|HEAD|OPTIONS) /")


class CountingProxy:
    """Counts requests to `target_port`, leaving out those whose headers hold `exclude` (e.g.
    the Functions host's own queue polling, told apart by its User-Agent)."""

    def __init__(
        self, target_port: int, host: str = "127.0.0.1", *, exclude: bytes | None = None
    ) -> None:
        self.target = (host, target_port)
        self._exclude = exclude.lower() if exclude else None
        self._listener = socket.create_server((host, 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self.requests = 0
        self.request_lines: list[str] = []  # what was counted, for a reader asking "which?"
        self._stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.request_lines = []

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        try:
            while data := source.recv(65536):
                if count:
                    seen = self._count(data)
                    with self._lock:
                        self.requests += len(seen)
                        self.request_lines.extend(seen)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def _count(self, data: bytes) -> list[str]:
        """The request lines in `data` that count."""
        lowered = data.lower()
        counted = []
        for match in _REQUEST_LINE.finditer(data):
            start = match.start() + (2 if data[match.start() : match.start() + 2] == b"\r\n" else 0)
            end = lowered.find(b"\r\n\r\n", start)
            headers = lowered[start : end if end >= 0 else len(lowered)]
            if self._exclude is not None and self._exclude in headers:
                continue
            line_end = data.find(b"\r\n", start)
            counted.append(
                data[start : line_end if line_end >= 0 else start + 200].decode("latin-1")
            )
        return counted

    def stop(self) -> None:
        self._stopping = True
        self._listener.close()
