"""Import `function_app`, index its functions once, describe each trigger the host must serve."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import HostConfigError, resolve_setting_refs
from .ncrontab import CronSchedule
from .routes import RouteTemplate, join_prefix

AUTH_LEVELS = ("anonymous", "function", "admin")
DEFAULT_CONNECTION = "AzureWebJobsStorage"


@dataclass(frozen=True)
class HttpTrigger:
    """An HTTP trigger: its compiled route (prefix included), methods (None = all) and auth."""

    route: RouteTemplate
    public_path: str
    methods: frozenset[str] | None
    auth_level: str


@dataclass(frozen=True)
class TimerTrigger:
    """A timer trigger; `expression` is the schedule after `%SETTING%` resolution."""

    expression: str
    schedule: CronSchedule
    run_on_startup: bool
    use_monitor: bool


@dataclass(frozen=True)
class QueueTrigger:
    """A queue trigger, its connection setting's name and the resolved connection string."""

    queue_name: str
    connection_name: str
    connection_string: str
    data_type: str  # "message" (a func.QueueMessage), "str" or "bytes", from the annotation


Trigger = HttpTrigger | TimerTrigger | QueueTrigger


@dataclass(frozen=True)
class FunctionSpec:
    """One indexed function: what triggers it and how to call the user's Python function."""

    name: str
    trigger: Trigger
    trigger_param: str
    user_function: Callable[..., Any]
    pass_context: bool
    http_out_param: str | None  # a named http output binding (func.Out[HttpResponse])
    directory: str

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)

    @property
    def trigger_type(self) -> str:
        return {
            HttpTrigger: "httpTrigger",
            TimerTrigger: "timerTrigger",
            QueueTrigger: "queueTrigger",
        }[type(self.trigger)]


def import_function_app(app_dir: Path) -> Any:
    """Import DIR/function_app.py (DIR first on sys.path) and return its one FunctionApp."""
    from azure.functions.decorators.function_app import FunctionRegister

    sys.path.insert(0, str(app_dir))
    module = importlib.import_module("function_app")
    apps = [v for v in vars(module).values() if isinstance(v, FunctionRegister)]
    if not apps:
        raise HostConfigError(
            "function_app.py defines no FunctionApp: expected `app = func.FunctionApp(...)`"
        )
    if len(apps) > 1:
        raise HostConfigError("function_app.py defines more than one FunctionApp instance")
    return apps[0]


def _param_kind(fn: Callable[..., Any], param: str) -> str:
    """'str', 'bytes' or 'message', from the trigger parameter's annotation."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable string annotations: fall back to their text
        hints = {k: v for k, v in getattr(fn, "__annotations__", {}).items()}
    hint = hints.get(param)
    if hint in (str, "str"):
        return "str"
    if hint in (bytes, "bytes"):
        return "bytes"
    return "message"


def _resolve_connection(name: str, function: str) -> str:
    # The host looks for the setting as named, then with the AzureWebJobs prefix.
    for candidate in (name, f"AzureWebJobs{name}"):
        value = os.environ.get(candidate)
        if value:
            return value
    raise HostConfigError(
        f"Function '{function}': the storage connection setting '{name}' is missing "
        f"(neither {name} nor AzureWebJobs{name} is set)"
    )


def _http_trigger(binding: dict[str, Any], route_prefix: str, function: str) -> HttpTrigger:
    template = str(binding.get("route") or function)
    full = join_prefix(route_prefix, template)
    if full.lower().split("/")[1:2] == ["admin"]:
        raise HostConfigError(f"Function '{function}': the route '{full}' is reserved (admin)")
    try:
        route = RouteTemplate.compile(full)
    except ValueError as exc:
        raise HostConfigError(f"Function '{function}': invalid route '{template}': {exc}") from exc
    methods = binding.get("methods")
    auth = str(binding.get("authLevel") or "function").lower()
    if auth not in AUTH_LEVELS:
        raise HostConfigError(f"Function '{function}': unknown auth level '{auth}'")
    return HttpTrigger(
        route=route,
        public_path=full,
        methods=frozenset(str(m).upper() for m in methods) if methods else None,
        auth_level=auth,
    )


def _timer_trigger(binding: dict[str, Any], function: str) -> TimerTrigger:
    raw = str(binding.get("schedule") or "")
    what = f"Function '{function}' timer schedule"
    expression = resolve_setting_refs(raw, what)
    if ":" in expression and len(expression.split()) == 1:
        raise HostConfigError(f"{what}: TimeSpan schedules ('{expression}') are not supported here")
    try:
        schedule = CronSchedule.parse(expression)
        schedule.next_after(datetime.now(UTC))  # a schedule that never fires is an error too
    except ValueError as exc:
        raise HostConfigError(f"{what}: {exc}") from exc
    use_monitor = binding.get("useMonitor")
    if use_monitor is None:
        use_monitor = schedule.default_use_monitor(datetime.now(UTC))
    return TimerTrigger(expression, schedule, bool(binding.get("runOnStartup")), bool(use_monitor))


def _queue_trigger(binding: dict[str, Any], fn: Callable[..., Any], function: str) -> QueueTrigger:
    queue = resolve_setting_refs(str(binding.get("queueName") or ""), f"Function '{function}'")
    if not queue:
        raise HostConfigError(f"Function '{function}': the queue trigger has no queue name")
    connection = str(binding.get("connection") or DEFAULT_CONNECTION)
    return QueueTrigger(
        queue_name=queue,
        connection_name=connection,
        connection_string=_resolve_connection(connection, function),
        data_type=_param_kind(fn, str(binding["name"])),
    )


def index_functions(app: Any, route_prefix: str, app_dir: Path) -> list[FunctionSpec]:
    """Call `app.get_functions()` (once: a second call raises) and describe every function."""
    specs: list[FunctionSpec] = []
    for fn in app.get_functions():
        name = fn.get_function_name()
        bindings = json.loads(fn.get_function_json())["bindings"]
        user_function = fn.get_user_function()
        trigger_binding = next(b for b in bindings if str(b["type"]).endswith("Trigger"))
        kind = trigger_binding["type"]
        trigger: Trigger
        if kind == "httpTrigger":
            trigger = _http_trigger(trigger_binding, route_prefix, name)
        elif kind == "timerTrigger":
            trigger = _timer_trigger(trigger_binding, name)
        elif kind == "queueTrigger":
            trigger = _queue_trigger(trigger_binding, user_function, name)
        else:
            raise HostConfigError(f"Function '{name}': trigger type '{kind}' is not supported here")
        http_out: str | None = None
        for b in bindings:
            if b is trigger_binding:
                continue
            if b["type"] == "http" and kind == "httpTrigger":
                http_out = None if b["name"] == "$return" else str(b["name"])
                continue
            raise HostConfigError(
                f"Function '{name}': binding '{b['name']}' of type '{b['type']}' is not supported "
                "by the local host"
            )
        params = set(inspect.signature(user_function).parameters)
        known = {trigger_binding["name"], "context"} | ({http_out} if http_out else set())
        unknown = params - known
        if unknown:
            raise HostConfigError(
                f"Function '{name}': parameter(s) {sorted(unknown)} match no binding"
            )
        if trigger_binding["name"] not in params:
            raise HostConfigError(
                f"Function '{name}': no parameter named '{trigger_binding['name']}' for its trigger"
            )
        specs.append(
            FunctionSpec(
                name=name,
                trigger=trigger,
                trigger_param=str(trigger_binding["name"]),
                user_function=user_function,
                pass_context="context" in params,
                http_out_param=http_out,
                directory=str(app_dir),
            )
        )
    return specs
