"""HTTP to a Microsoft cloud API: one session, a bearer token per request, the local CA, and
throttling (429/503) answered by waiting its `Retry-After`, bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.errors import DependencyUnavailable

if TYPE_CHECKING:
    import requests


class ThrottledHttp:
    """Sends requests; a throttled or unavailable answer is retried after its `Retry-After`
    while the total wait stays within `max_retry_wait_seconds`. The last answer is returned,
    whatever its status: the caller reads its own service's errors."""

    def __init__(
        self,
        service: str,
        token: Callable[[], str],
        *,
        ca_bundle: str | None = None,
        timeout_seconds: int = 15,
        max_attempts: int = 4,
        max_retry_wait_seconds: float = 20.0,
        retryable: tuple[int, ...] = (429, 503),
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 10,
    ) -> None:
        self.service, self._token = service, token
        self._pool_size = pool_size
        self._ca_bundle, self._timeout = ca_bundle, timeout_seconds
        self._max_attempts, self._max_wait = max_attempts, max_retry_wait_seconds
        self.retryable, self._headers, self._sleep = retryable, headers or {}, sleep
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        self.requests_sent = 0  # for the benchmark: requests that reached the service

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    from shared.adapters.http_pool import pooled_session

                    session = pooled_session(self._pool_size)
                    session.headers.update(self._headers)
                    self._session = session
        return self._session

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        data: bytes | str | None = None,
    ) -> requests.Response:
        import requests

        waited = 0.0
        for attempt in range(1, self._max_attempts + 1):
            all_headers: dict[str, Any] = {
                "Authorization": f"Bearer {self._token()}",
                **(headers or {}),
            }
            try:
                self.requests_sent += 1
                # `verify` on every call: REQUESTS_CA_BUNDLE would override a session's.
                reply = self.session.request(
                    method,
                    url,
                    data=data,
                    headers=all_headers,
                    timeout=self._timeout,
                    verify=self._ca_bundle or True,
                )
            except requests.RequestException as exc:
                raise DependencyUnavailable(f"{self.service} is not reachable") from exc
            if reply.status_code in self.retryable and attempt < self._max_attempts:
                wait = retry_after(reply.headers.get("Retry-After"), attempt)
                if waited + wait <= self._max_wait:
                    waited += wait
                    self._sleep(wait)
                    continue
            return reply
        raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover


def retry_after(value: str | None, attempt: int) -> float:
    """Seconds to wait: the service's Retry-After, else 1, 2, 4 ... by attempt."""
    try:
        return max(0.0, float(value)) if value is not None else float(2 ** (attempt - 1))
    except ValueError:
        return float(2 ** (attempt - 1))
