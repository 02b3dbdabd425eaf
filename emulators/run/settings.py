"""The app settings `make run` gives the host: local.settings.json, under the environment, under
the addresses of the services as they actually run; checked before anything starts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from emulators.run.options import LOOPBACK, Ports, StartError
from shared.config import ConfigError, Settings, load_settings


def read_settings_file(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json, as strings (what the host turns into env vars)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StartError(f"settings file {path} not found") from None
    except ValueError as exc:
        raise StartError(f"settings file {path} is not valid JSON: {exc}") from None
    values = raw.get("Values") if isinstance(raw, dict) else None
    if not isinstance(values, dict):
        raise StartError(f'settings file {path} has no "Values" object')
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


def service_urls(ports: Ports) -> dict[str, str]:
    return {
        "host": f"http://{LOOPBACK}:{ports.host}",
        "acs": f"https://{LOOPBACK}:{ports.acs}",
        "entra": f"https://{LOOPBACK}:{ports.entra}",
        "dataverse": f"https://{LOOPBACK}:{ports.dataverse}",
        "graph": f"https://{LOOPBACK}:{ports.graph}",
        "acs_devices": f"http://{LOOPBACK}:{ports.acs_devices}",
    }


def acs_access_key(connection_string: str) -> str:
    parts = (p.split("=", 1) for p in connection_string.strip().strip(";").split(";") if "=" in p)
    return {k.strip().lower(): v.strip() for k, v in parts}.get("accesskey", "")


def app_overrides(
    ports: Ports, ca_path: Path, storage_connection_string: str, access_key: str
) -> dict[str, str]:
    """The settings that must point at the services as they actually run (ports, CA)."""
    urls = service_urls(ports)
    return {
        "AzureWebJobsStorage": storage_connection_string,
        "ACS_CONNECTION_STRING": f"endpoint={urls['acs']};accesskey={access_key}",
        "ACS_CALLBACK_JWKS_URL": f"{urls['acs']}/calling/keys",
        "ENTRA_AUTHORITY_HOST": urls["entra"],
        "DATAVERSE_URL": urls["dataverse"],
        "GRAPH_URL": urls["graph"],
        "PUBLIC_BASE_URL": urls["host"],
        "TLS_CA_BUNDLE": str(ca_path),
        "PANEL_DEVICE_EMULATOR_URL": urls["acs_devices"],
    }


def effective_settings(
    file_values: Mapping[str, str], environ: Mapping[str, str], overrides: Mapping[str, str]
) -> Settings:
    """What the app will see: file values, under the environment, under our overrides.

    Checked here, before anything starts, with the app's own validation (same messages).
    """
    env = {**file_values, **environ, **overrides}
    try:
        return load_settings(env)
    except ConfigError as exc:
        raise StartError(
            f"{exc}\n(the values come from {len(file_values)} settings in local.settings.json "
            "and the environment; the environment wins)"
        ) from None


def acs_numbers(settings: Settings) -> list[str]:
    """Every number the ACS resource owns: each pool's numbers and each agent's direct ones."""
    numbers: list[str] = []
    for pool in settings.service_pools:
        numbers += pool.numbers
    for agent in settings.agents:
        numbers += agent.direct_numbers
    return list(dict.fromkeys(numbers))
