"""Calling user functions as the Python worker does: sync or async, `context`, invocation logs."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func
from azure.functions import _abc as functions_abc

from .loader import FunctionSpec

log = logging.getLogger("functions_host")


class InvocationFailed(Exception):
    """The function raised; `__cause__` is its exception (already logged with its traceback)."""


class _TraceContext(functions_abc.TraceContext):
    def __init__(self) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(functions_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """The `context` argument: invocation id, function name and directory."""

    def __init__(self, invocation_id: str, spec: FunctionSpec) -> None:
        self._invocation_id = invocation_id
        self._name = spec.name
        self._directory = spec.directory
        self._tls = threading.local()
        self._tls.invocation_id = invocation_id
        self._trace = _TraceContext()
        self._retry = _RetryContext()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._tls

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def trace_context(self) -> functions_abc.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> functions_abc.RetryContext:
        return self._retry


class _OutValue(func.Out[Any]):
    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


# The Python worker's sync-function pool: PYTHON_THREADPOOL_THREAD_COUNT (1..32), else the
# ThreadPoolExecutor default the worker leaves in place on Python 3.9+, min(32, CPUs + 4).
THREAD_COUNT_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"
MAX_THREAD_COUNT = 32


def worker_thread_count(environ: dict[str, str] | None = None) -> int:
    """How many sync invocations the worker runs at once."""
    raw = (environ if environ is not None else os.environ).get(THREAD_COUNT_SETTING, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(
                f"{THREAD_COUNT_SETTING} must be a whole number, got {raw!r}"
            ) from None
        if not 1 <= value <= MAX_THREAD_COUNT:
            raise ValueError(f"{THREAD_COUNT_SETTING} must be between 1 and {MAX_THREAD_COUNT}")
        return value
    return min(MAX_THREAD_COUNT, (os.cpu_count() or 1) + 4)


class Invoker:
    """Runs invocations as the worker does: sync functions on a thread pool of
    `worker_thread_count()` threads (the rest wait their turn), async ones on one event loop."""

    def __init__(self, thread_count: int | None = None) -> None:
        self.thread_count = thread_count or worker_thread_count()
        self._pool = ThreadPoolExecutor(self.thread_count, thread_name_prefix="worker")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="functions-asyncio"
        )
        self._thread.start()

    def invoke(self, spec: FunctionSpec, trigger_value: Any, reason: str) -> Any:
        """Call the function; return its result (or its http output binding's value)."""
        invocation_id = str(uuid.uuid4())
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id)
        kwargs: dict[str, Any] = {spec.trigger_param: trigger_value}
        if spec.pass_context:
            kwargs["context"] = InvocationContext(invocation_id, spec)
        out = _OutValue() if spec.http_out_param else None
        if spec.http_out_param:
            kwargs[spec.http_out_param] = out
        started = time.monotonic()
        try:
            if spec.is_async:
                coroutine = spec.user_function(**kwargs)
                result = asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
            else:
                result = self._pool.submit(spec.user_function, **kwargs).result()
        except Exception as exc:
            millis = int((time.monotonic() - started) * 1000)
            log.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)\n"
                "Result: Failure Exception: %s: %s",
                spec.name,
                invocation_id,
                millis,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            raise InvocationFailed(str(exc)) from exc
        millis = int((time.monotonic() - started) * 1000)
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
            spec.name,
            invocation_id,
            millis,
        )
        return out.get() if out is not None else result

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._pool.shutdown(wait=False)
