"""HTTP connection pools sized for the worker's concurrency, for every outbound client.

requests keeps at most 10 connections per host; with more invocations than that running at once
(PYTHON_THREADPOOL_THREAD_COUNT) the extra connections are opened, used once and discarded with
"Connection pool is full". Each client gets a session whose pool holds one connection per
worker thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

REQUESTS_DEFAULT_POOL = 10


def pooled_session(size: int) -> requests.Session:
    """A session keeping up to `size` connections per host (never fewer than requests' 10).

    Retries stay off at this level: the Azure SDK's retry policy and ThrottledHttp do them."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=REQUESTS_DEFAULT_POOL,
        pool_maxsize=max(size, REQUESTS_DEFAULT_POOL),
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
