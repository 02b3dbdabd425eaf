"""Every app setting, typed, with defaults; validated once, all problems reported together."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import cache
from typing import Any
from urllib.parse import urlparse

from shared.domain.callback_lists import CallbackList, parse_callback_lists
from shared.domain.directory import (
    Agent,
    Directory,
    ServicePool,
    check_directory,
    parse_agents,
    parse_pools,
)
from shared.domain.enterprise_users import EnterpriseUser, parse_enterprise_users


class ConfigError(ValueError):
    """Raised when settings are missing or invalid; the message names every bad setting."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid app settings: " + "; ".join(problems))


# ---------------------------------------------------------------- parsers (value -> typed value)


def _text(raw: str) -> str:
    return raw


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _url(raw: str) -> str:
    parsed = urlparse(raw.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return raw.strip().rstrip("/")


def _https_url(raw: str) -> str:
    value = _url(raw)
    if not value.startswith("https://"):
        raise ValueError("must be an https URL")
    return value


def _acs_connection_string(raw: str) -> str:
    parts = dict(part.split("=", 1) for part in raw.strip().strip(";").split(";") if "=" in part)
    lowered = {k.lower(): v for k, v in parts.items()}
    endpoint, key = lowered.get("endpoint", ""), lowered.get("accesskey", "")
    if not endpoint.startswith("https://"):
        raise ValueError("must contain endpoint=https://...")
    if endpoint.endswith("/"):
        raise ValueError("endpoint must not end with '/' (the signed host would differ)")
    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("accesskey must be base64") from None
    if not key:
        raise ValueError("must contain accesskey=...")
    return raw.strip()


_NCRONTAB_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


def _ncrontab(raw: str) -> str:
    parts = raw.split()
    if len(parts) != 6 or not all(_NCRONTAB_FIELD.match(p) for p in parts):
        raise ValueError("must be a six-field NCRONTAB expression (seconds first)")
    return raw.strip()


def _statuses(raw: str) -> dict[str, str]:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        raise ValueError("is not valid JSON") from None
    kinds = ("Offwork", "Available", "DND")
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and v in kinds for k, v in data.items()
    ):
        raise ValueError(f"must be a JSON object of status name -> one of {list(kinds)}")
    return dict(data)


def _secret_key(raw: str) -> str:
    if len(raw.strip()) < 32:
        raise ValueError("must be at least 32 characters")
    return raw.strip()


def _region(raw: str) -> str:
    value = raw.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ValueError("must be a two-letter ISO 3166 region code, e.g. FI")
    return value


def _publisher_prefix(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[a-z][a-z0-9]{1,7}_", value):
        raise ValueError("must be the publisher prefix with its underscore, e.g. new_")
    return value


# ---------------------------------------------------------------- the settings


@dataclass(frozen=True)
class Setting:
    """One app setting: its environment name, parser, default (None = required) and doc line."""

    env: str
    parse: Callable[[str], Any]
    default: str | None
    doc: str
    secret: bool = False


SETTINGS: dict[str, Setting] = {
    s.env: s
    for s in (
        Setting(
            "AzureWebJobsStorage",
            _text,
            None,
            "Storage account connection string (tables and queues).",
        ),
        Setting("APP_VERSION", _text, "0.1.0", "Version reported by /api/health."),
        Setting(
            "PUBLIC_BASE_URL",
            _url,
            None,
            "Public base URL of this Function App (callback and recording links).",
        ),
        Setting(
            "TLS_CA_BUNDLE",
            _text,
            "",
            "Extra CA bundle file for outbound HTTPS (local emulators only; empty in Azure).",
        ),
        Setting(
            "PHONE_DEFAULT_REGION",
            _region,
            "FI",
            "Region used to read numbers written without a country code.",
        ),
        Setting(
            "ACS_CONNECTION_STRING",
            _acs_connection_string,
            None,
            "ACS resource connection string: endpoint=https://...;accesskey=...",
            secret=True,
        ),
        Setting(
            "ACS_RESOURCE_ID",
            _text,
            None,
            "ACS resource immutable id: the audience of ACS callback tokens.",
        ),
        Setting(
            "ACS_CALLBACK_JWT_ISSUER",
            _https_url,
            "https://acscallautomation.communication.azure.com",
            "Issuer of the JWTs ACS puts on mid-call callbacks.",
        ),
        Setting(
            "ACS_CALLBACK_JWKS_URL",
            _https_url,
            "https://acscallautomation.communication.azure.com/calling/keys",
            "Where the public keys for ACS callback JWTs are published.",
        ),
        Setting(
            "ENTRA_AUTHORITY_HOST",
            _https_url,
            "https://login.microsoftonline.com",
            "Entra ID authority host.",
        ),
        Setting("ENTRA_TENANT_ID", _text, None, "Entra ID tenant (directory) id."),
        Setting(
            "API_AUDIENCE",
            _text,
            None,
            "Audience (application id URI) of the tokens the web phone panel sends.",
        ),
        Setting(
            "DATAVERSE_URL",
            _https_url,
            None,
            "Dynamics 365 organisation URL, e.g. https://contoso.crm4.dynamics.com.",
        ),
        Setting(
            "DATAVERSE_CLIENT_ID",
            _text,
            None,
            "Application (client) id of the app registration used as Application User.",
        ),
        Setting(
            "DATAVERSE_CLIENT_SECRET",
            _text,
            None,
            "Client secret of that app registration.",
            secret=True,
        ),
        Setting(
            "DATAVERSE_PUBLISHER_PREFIX",
            _publisher_prefix,
            "new_",
            "Publisher prefix of the custom phone call columns.",
        ),
        Setting(
            "CALLBACK_SECRET",
            _secret_key,
            None,
            "Key that signs the per-call token in ACS callback URLs (32+ characters).",
            secret=True,
        ),
        Setting(
            "AGENTS",
            parse_agents,
            "[]",
            "JSON list of agents: id, name, entraObjectId, systemUserId, acsUserId and/or "
            "phoneNumber, directNumbers, callerIds (see below).",
        ),
        Setting(
            "SERVICE_POOLS",
            parse_pools,
            "[]",
            "JSON list of service pools: id, name, numbers, members (agent ids in offer "
            "order), ringTimeoutSeconds (see below).",
        ),
        Setting(
            "AGENT_ROLE",
            _text,
            "Phone.Agent",
            "App role an Entra token must carry to use the agent API.",
        ),
        Setting(
            "SUPERVISOR_ROLE",
            _text,
            "Phone.Supervisor",
            "App role of supervisors (pools, members, dashboard, recordings).",
        ),
        Setting(
            "DIRECT_RING_SECONDS",
            _int_between(5, 300),
            "30",
            "How long a direct call rings the agent before it counts as unanswered.",
        ),
        Setting(
            "OUTBOUND_RING_SECONDS",
            _int_between(5, 300),
            "45",
            "How long click-to-dial rings the customer.",
        ),
        Setting(
            "ACTIVITY_SUBJECT_INBOUND",
            _text,
            "Incoming call from {number}",
            "Subject of inbound Phone Calls; {number}, {name}, {pool}, {agent} are filled.",
        ),
        Setting(
            "ACTIVITY_SUBJECT_OUTBOUND",
            _text,
            "Outgoing call to {number}",
            "Subject of outbound Phone Calls; same placeholders.",
        ),
        Setting(
            "AVAILABILITY_STATUSES",
            _statuses,
            "{}",
            "JSON object of the customer's own statuses, name -> type (Offwork, Available or "
            'DND), e.g. {"Meeting": "DND"}; Available, Offwork, DND and Lunch always exist.',
        ),
        Setting(
            "LUNCH_MINUTES",
            _int_between(1, 240),
            "30",
            "How long Lunch (an Offwork status) lasts before the status before it returns.",
        ),
        Setting(
            "SESSION_LEASE_SECONDS",
            _int_between(10, 600),
            "60",
            "Web phone session lease; the panel heartbeats well within it (§1.4).",
        ),
        Setting(
            "HOUSEKEEPING_SCHEDULE",
            _ncrontab,
            None,
            "When the housekeeping timer runs (expired Lunch statuses), e.g. 0 * * * * *. "
            "Required: the Functions runtime reads it for the timer binding.",
        ),
        Setting(
            "HOLD_MUSIC_URL",
            _text,
            "",
            "Audio file (https URL, WAV) the customer hears on hold; empty: ACS's default.",
        ),
        Setting(
            "CALLBACK_OFFER_PROMPT",
            _text,
            "If you would like us to call you back, press 1. To keep waiting, press any other key.",
            "What a waiting caller hears when a callback is offered (read out by ACS).",
        ),
        Setting(
            "CALLBACK_OFFER_PROMPT_URL",
            _text,
            "",
            "An audio file (https, WAV) to play instead of CALLBACK_OFFER_PROMPT.",
        ),
        Setting(
            "CALLBACK_CONFIRM_PROMPT",
            _text,
            "Thank you. We will call you back as soon as we can. Goodbye.",
            "What the caller hears after pressing 1, before the call ends.",
        ),
        Setting(
            "CALLBACK_CONFIRM_PROMPT_URL",
            _text,
            "",
            "An audio file (https, WAV) to play instead of CALLBACK_CONFIRM_PROMPT.",
        ),
        Setting(
            "RECORDING_ENABLED",
            _bool,
            "true",
            'Record answered calls (a pool\'s "record" in SERVICE_POOLS overrides it).',
        ),
        Setting(
            "ENRICH_DELAY_SECONDS",
            _int_between(0, 3600),
            "30",
            "Delay before the recording link and metrics are written to the activity.",
        ),
        Setting(
            "ENRICH_JITTER_SECONDS",
            _int_between(0, 600),
            "10",
            "Random spread (plus or minus) around that delay.",
        ),
        Setting(
            "ENRICH_MAX_WAIT_SECONDS",
            _int_between(0, 86400),
            "600",
            "How long after a call the enrichment waits for its recording (or activity); then "
            "the metrics are written without the link and the reason is kept on the call.",
        ),
        Setting(
            "ENRICH_COMPLETE_ACTIVITY",
            _bool,
            "true",
            "Complete the Phone Call (Made / Received) in the enrichment's PATCH; false leaves "
            "it open for the agent.",
        ),
        Setting(
            "QUEUE_MAX_DEQUEUE_COUNT",
            _int_between(1, 100),
            "5",
            "Must equal host.json extensions.queues.maxDequeueCount: at that attempt a failing "
            "enrichment is recorded as moved to the poison queue.",
        ),
        Setting(
            "CALLBACK_LISTS",
            parse_callback_lists,
            "{}",
            'JSON object of callback lists: {"<list id>": {"queueId": "<D365 queue GUID>", '
            '"enabled": true}} (see docs/callbacks.md).',
        ),
        Setting(
            "CALLBACK_POLL_SCHEDULE",
            _ncrontab,
            "0 */15 * * * *",
            "When open callback requests are imported into D365 (NCRONTAB, UTC). The host "
            "resolves %CALLBACK_POLL_SCHEDULE% itself, so set it as an app setting.",
        ),
        Setting(
            "CALLBACK_IMMEDIATE",
            _bool,
            "true",
            "Import each captured callback request at once (a queue message); the timer stays "
            "the safety net. false: polling only.",
        ),
        Setting(
            "CALLBACK_CLAIM_SECONDS",
            _int_between(60, 3600),
            "300",
            "How long an import run holds the requests it works on; a claim older than this "
            "is taken as left by a dead run.",
        ),
        Setting(
            "CALLBACK_BATCH_SIZE",
            _int_between(1, 250),
            "200",
            "Callback requests imported per batch: one $batch identifies their numbers, one "
            "creates their Phone Calls and queue items.",
        ),
        Setting(
            "GRAPH_URL",
            _https_url,
            "https://graph.microsoft.com",
            "Microsoft Graph endpoint (Teams call records; tokens are for "
            "https://graph.microsoft.com with the Dataverse app registration).",
        ),
        Setting(
            "ENTERPRISE_SYNC_SCHEDULE",
            _ncrontab,
            "0 */5 * * * *",
            "When Teams PSTN calls are read from Graph (NCRONTAB, UTC). The host resolves "
            "%ENTERPRISE_SYNC_SCHEDULE% itself, so set it as an app setting.",
        ),
        Setting(
            "ENTERPRISE_USERS",
            parse_enterprise_users,
            "[]",
            "JSON list of users whose Teams/mobile calls are synced: systemUserId with email "
            "and/or userId (Entra object id). Empty: the AGENTS, by entraObjectId (see "
            "docs/enterprise-calls.md).",
        ),
        Setting(
            "ENTERPRISE_MIN_DURATION_SECONDS",
            _int_between(0, 86400),
            "1",
            "Enterprise calls shorter than this (connected seconds) are not imported.",
        ),
        Setting(
            "ENTERPRISE_MATCH_MARGIN_SECONDS",
            _int_between(0, 3600),
            "120",
            "A Phone Call of the same user and number starting this close to an enterprise "
            "call means it is already logged (by the web phone): not imported again.",
        ),
        Setting(
            "ENTERPRISE_INCLUDE_ACCOUNTS_LEADS",
            _bool,
            "false",
            "Also import enterprise calls whose other party is an account or a lead (not only "
            "a contact).",
        ),
        Setting(
            "ENTERPRISE_OVERLAP_SECONDS",
            _int_between(0, 7 * 86400),
            "86400",
            "Each Teams sync re-reads this far behind its watermark, for call records Graph "
            "publishes late; re-read records cost no Dataverse request.",
        ),
        # ---- the web phone panel (issue 12) ----
        Setting(
            "PANEL_CLIENT_ID",
            _text,
            "",
            "Application (client) id of the panel's app registration (a public client with "
            "Single-page application redirect URIs); empty: the panel cannot sign in.",
        ),
        Setting(
            "PANEL_DEVICE_EMULATOR_URL",
            _text,
            "",
            "Local only: the ACS emulator's browser device API the panel rings and answers "
            "through; empty (Azure): the panel uses the ACS Calling SDK.",
        ),
        Setting(
            "REJOIN_SECONDS",
            _int_between(5, 600),
            "60",
            "How long a customer waits on hold music for an agent whose panel dropped (a "
            "refresh) to start again and be rung back; then a pool caller goes to the front "
            "of the queue, a direct call to the agent's DND target.",
        ),
        Setting(
            "HTTP_TIMEOUT_SECONDS",
            _int_between(1, 120),
            "15",
            "Timeout for each outbound HTTP request to Dataverse, ACS and Graph.",
        ),
        Setting(
            "HEALTH_CACHE_SECONDS",
            _int_between(0, 300),
            "10",
            "How long /api/health reuses its last answer (it is anonymous; 0 probes every time).",
        ),
        Setting(
            "HEALTH_TIMEOUT_SECONDS",
            _int_between(1, 30),
            "3",
            "Timeout for each dependency probe of /api/health.",
        ),
    )
}


# Not frozen: a frozen dataclass of this many fields costs ~3 ms more at every cold start.
# Nothing assigns to it; get_settings() hands out the one validated instance.
@dataclass(eq=False)
class Settings:
    """The validated settings; field names are the lower-cased setting names."""

    azurewebjobsstorage: str
    app_version: str
    public_base_url: str
    tls_ca_bundle: str
    phone_default_region: str
    acs_connection_string: str
    acs_resource_id: str
    acs_callback_jwt_issuer: str
    acs_callback_jwks_url: str
    entra_authority_host: str
    entra_tenant_id: str
    api_audience: str
    dataverse_url: str
    dataverse_client_id: str
    dataverse_client_secret: str
    dataverse_publisher_prefix: str
    callback_secret: str
    agents: tuple[Agent, ...]
    service_pools: tuple[ServicePool, ...]
    agent_role: str
    supervisor_role: str
    direct_ring_seconds: int
    outbound_ring_seconds: int
    activity_subject_inbound: str
    activity_subject_outbound: str
    availability_statuses: dict[str, str]
    lunch_minutes: int
    session_lease_seconds: int
    housekeeping_schedule: str
    hold_music_url: str
    callback_offer_prompt: str
    callback_offer_prompt_url: str
    callback_confirm_prompt: str
    callback_confirm_prompt_url: str
    recording_enabled: bool
    enrich_delay_seconds: int
    enrich_jitter_seconds: int
    enrich_max_wait_seconds: int
    enrich_complete_activity: bool
    queue_max_dequeue_count: int
    callback_lists: tuple[CallbackList, ...]
    callback_poll_schedule: str
    callback_immediate: bool
    callback_claim_seconds: int
    callback_batch_size: int
    graph_url: str
    enterprise_sync_schedule: str
    enterprise_users: tuple[EnterpriseUser, ...]
    enterprise_min_duration_seconds: int
    enterprise_match_margin_seconds: int
    enterprise_include_accounts_leads: bool
    enterprise_overlap_seconds: int
    panel_client_id: str
    panel_device_emulator_url: str
    rejoin_seconds: int
    http_timeout_seconds: int
    health_cache_seconds: int
    health_timeout_seconds: int

    @property
    def storage_connection_string(self) -> str:
        return self.azurewebjobsstorage

    @property
    def directory(self) -> Directory:
        return Directory(self.agents, self.service_pools)

    @property
    def ca_bundle(self) -> str | None:
        """The CA bundle path for outbound HTTPS, or None for the system store."""
        return self.tls_ca_bundle or None

    def __repr__(self) -> str:  # never print a secret
        shown = {
            f.name: ("***" if SETTINGS[_env_name(f.name)].secret else getattr(self, f.name))
            for f in fields(self)
        }
        return f"Settings({shown})"


def _env_name(field_name: str) -> str:
    for env in SETTINGS:
        if env.lower() == field_name:
            return env
    raise KeyError(field_name)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise one ConfigError naming every bad one."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, setting in SETTINGS.items():
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            if setting.default is None:
                problems.append(f"{name} is missing")
                continue
            raw = setting.default
        try:
            values[name.lower()] = setting.parse(raw)
        except ValueError as exc:
            # Parsers of secret settings never echo the value in their message.
            problems.append(f"{name} {exc}")
    if "agents" in values and "service_pools" in values:
        problems.extend(check_directory(Directory(values["agents"], values["service_pools"])))
    if "service_pools" in values and "callback_lists" in values:
        known_lists = {c.id for c in values["callback_lists"]}
        problems.extend(
            f"SERVICE_POOLS pool {p.id!r} offers callbacks to {p.callback.list_id!r}, "
            "which CALLBACK_LISTS does not define"
            for p in values["service_pools"]
            if p.callback is not None and p.callback.list_id not in known_lists
        )
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


@cache
def get_settings() -> Settings:
    """The process-wide settings, validated on first use."""
    return load_settings()
