"""Host keys: a master key and function keys, kept in a JSON file (created with random keys)."""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .config import HostConfigError


def new_key() -> str:
    # The same shape as the keys the real host generates: 40 random bytes, base64 (56 chars).
    return base64.urlsafe_b64encode(secrets.token_bytes(40)).decode("ascii")


@dataclass(frozen=True)
class HostKeys:
    """The master key (admin level) and the named host-level function keys."""

    master_key: str
    function_keys: dict[str, str]

    def is_master(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(
            (presented or "").encode(), self.master_key.encode()
        )

    def is_function_key(self, presented: str | None) -> bool:
        if not presented:
            return False
        # Compare against every key so the time taken does not say which one nearly matched.
        hits = [
            hmac.compare_digest(presented.encode(), k.encode()) for k in self.function_keys.values()
        ]
        return any(hits) or self.is_master(presented)


def load_or_create_keys(path: Path) -> HostKeys:
    """Read the keys file, creating it (owner-only) with fresh random keys when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"masterKey": new_key(), "functionKeys": {"default": new_key()}}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f, indent=2)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HostConfigError(f"keys file {path} is not valid JSON: {exc}") from exc
    master = raw.get("masterKey") if isinstance(raw, dict) else None
    functions = raw.get("functionKeys", {}) if isinstance(raw, dict) else None
    if not isinstance(master, str) or not master:
        raise HostConfigError(f"keys file {path}: 'masterKey' must be a non-empty string")
    if not isinstance(functions, dict) or not all(
        isinstance(v, str) and v for v in functions.values()
    ):
        raise HostConfigError(
            f"keys file {path}: 'functionKeys' must map names to non-empty strings"
        )
    return HostKeys(master, dict(functions))
