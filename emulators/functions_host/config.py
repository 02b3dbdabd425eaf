"""host.json, local.settings.json and `%NAME%` app-setting references, read as the host does."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any


class HostConfigError(ValueError):
    """A configuration problem the real host would also refuse to start with."""


_TIMESPAN = re.compile(
    r"^(?:(?P<d>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2})(?::(?P<s>\d{1,2}(?:\.\d+)?))?$"
)

# host.json `logging.logLevel` names (the .NET ones) mapped to Python levels.
LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "information": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}


def parse_timespan(value: Any, what: str) -> timedelta:
    """Parse a .NET TimeSpan string such as `00:00:10` or `1.02:00:00`."""
    match = _TIMESPAN.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise HostConfigError(
            f"host.json: {what} must be a TimeSpan like '00:00:10', got {value!r}"
        )
    return timedelta(
        days=int(match["d"] or 0),
        hours=int(match["h"]),
        minutes=int(match["m"]),
        seconds=float(match["s"] or 0),
    )


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, with the Storage extension's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json this host honours."""

    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()
    log_level: int = logging.INFO


def _int_option(section: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HostConfigError(
            f"host.json: extensions.queues.{key} must be an integer in {low}..{high}, got {value!r}"
        )
    return value


def _queue_options(section: dict[str, Any]) -> QueueOptions:
    # Keys are case-insensitive in the real host's configuration binder.
    section = {k[:1].lower() + k[1:]: v for k, v in section.items()}
    batch_size = _int_option(section, "batchSize", 16, 1, 32)
    encoding = str(section.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise HostConfigError(
            f"host.json: extensions.queues.messageEncoding must be 'base64' or 'none', "
            f"got {encoding!r}"
        )
    polling = section.get("maxPollingInterval", "00:01:00")
    return QueueOptions(
        batch_size=batch_size,
        new_batch_threshold=_int_option(
            section, "newBatchThreshold", max(batch_size // 2, 1), 0, 1000
        ),
        max_dequeue_count=_int_option(section, "maxDequeueCount", 5, 1, 1000),
        visibility_timeout=parse_timespan(
            section.get("visibilityTimeout", "00:00:00"), "extensions.queues.visibilityTimeout"
        ),
        max_polling_interval=parse_timespan(polling, "extensions.queues.maxPollingInterval"),
        message_encoding=encoding,
    )


def load_host_json(app_dir: Path) -> HostConfig:
    """Read DIR/host.json; the real host refuses to start without it or without version 2.0."""
    path = app_dir / "host.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise HostConfigError(f"{path} not found: a Functions app needs a host.json") from exc
    except json.JSONDecodeError as exc:
        raise HostConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("version") != "2.0":
        raise HostConfigError(f"{path}: the 'version' property must be \"2.0\"")
    extensions = raw.get("extensions") or {}
    http = extensions.get("http") or {}
    prefix = http.get("routePrefix", "api")
    if not isinstance(prefix, str):
        raise HostConfigError("host.json: extensions.http.routePrefix must be a string")
    level_name = str(
        ((raw.get("logging") or {}).get("logLevel") or {}).get("default", "Information")
    )
    if level_name.lower() not in LOG_LEVELS:
        raise HostConfigError(f"host.json: unknown logging.logLevel.default {level_name!r}")
    return HostConfig(
        route_prefix=prefix.strip("/"),
        queues=_queue_options(extensions.get("queues") or {}),
        log_level=LOG_LEVELS[level_name.lower()],
    )


def load_settings(path: Path | None) -> dict[str, str]:
    """Apply local.settings.json `Values` to os.environ, never over a variable already set.

    Returns the values that were applied (for the startup log's names only: values may be secret).
    """
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise HostConfigError(f"settings file {path} not found") from exc
    except json.JSONDecodeError as exc:
        raise HostConfigError(f"settings file {path} is not valid JSON: {exc}") from exc
    values = raw.get("Values") or {}
    if not isinstance(values, dict):
        raise HostConfigError(f"settings file {path}: 'Values' must be an object")
    applied: dict[str, str] = {}
    for name, value in values.items():
        if name not in os.environ:
            # Core Tools passes every value as a string; JSON numbers and booleans become text.
            text = value if isinstance(value, str) else json.dumps(value)
            os.environ[name] = text
            applied[name] = text
    return applied


_SETTING_REF = re.compile(r"%([^%]+)%")


def resolve_setting_refs(value: str, what: str) -> str:
    """Replace every `%NAME%` with the app setting NAME (an environment variable)."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        resolved = os.environ.get(name)
        if not resolved:
            raise HostConfigError(
                f"{what}: '%{name}%' does not resolve to a value (app setting {name})"
            )
        return resolved

    return _SETTING_REF.sub(lookup, value)
