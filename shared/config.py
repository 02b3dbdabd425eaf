"""Every app setting, typed, with defaults; validated once, all problems reported together.

Start-up (function_app.py) runs `check_settings()`: every setting but the four JSON lists of
models (AGENTS, SERVICE_POOLS, CALLBACK_LISTS, ENTERPRISE_USERS, declared `on_first_use=True`),
whose models are not worth their import at cold start. `get_settings()`, on first use, reads and
validates all of them (`load_settings()`, as `make run` does before it starts anything).

Each setting is declared once, as a field of `Settings`: its name (the field, upper-cased, is the
app setting), its type (the annotation), and `setting(parser, default, doc)`. The parser turns the
raw text into that type (mypy checks they agree) and raises ValueError naming what is wrong.

To add a setting:
1. Add a field to `Settings`: `my_thing_seconds: int = setting(_int_between(1, 60), "5", "Doc.")`
   (default None = required; `secret=True` hides it from repr and the docs say Key Vault;
   `on_first_use=True` leaves it out of the start-up check: for a parser that imports models).
2. Reuse a parser below or write one (raise ValueError; never echo a secret's value).
3. Run `python scripts/config_docs.py` to regenerate docs/configuration.md (a test checks it).
4. A required one (default None) also goes into local.settings.json and infra/.
5. Read it as `get_settings().my_thing_seconds`, typed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import Field, dataclass, field, fields
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast
from urllib.parse import urlparse

if TYPE_CHECKING:  # the models of the JSON settings are imported by their parsers, on first use
    from shared.domain.callback_lists import CallbackList
    from shared.domain.directory import Agent, Directory, ServicePool
    from shared.domain.enterprise_users import EnterpriseUser


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


def _optional_https_endpoint(raw: str) -> str:
    return _https_url(raw) if raw.strip() else ""


def _storage_credential(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("", "managedidentity"):
        raise ValueError("must be managedidentity (or unset, with a connection string)")
    return value


def _acs_connection_string(raw: str) -> str:
    if not raw.strip():
        return ""  # then ACS_ENDPOINT and the managed identity
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


_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def _optional_email(raw: str) -> str:
    value = raw.strip()
    if value and not _EMAIL.match(value):
        raise ValueError("must be an e-mail address")
    return value


def _email_list(raw: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    wrong = [v for v in values if not _EMAIL.match(v)]
    if wrong:
        raise ValueError(f"has {len(wrong)} entries that are not e-mail addresses")
    return values


def _optional_https_url(raw: str) -> str:
    value = raw.strip()
    parsed = urlparse(value)
    if value and (parsed.scheme != "https" or not parsed.netloc):
        raise ValueError("must be an https URL")  # never echoed: it is a secret
    return value


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


def _regions(raw: str) -> frozenset[str]:
    return frozenset(_region(part) for part in raw.split(",") if part.strip())


def _number_types(raw: str) -> frozenset[str]:
    from shared.domain.number_types import NUMBER_TYPES

    names = frozenset(part.strip().upper() for part in raw.split(",") if part.strip())
    unknown = sorted(names - NUMBER_TYPES.keys())
    if unknown:
        raise ValueError(f"unknown number types {unknown}; use {sorted(NUMBER_TYPES)}")
    return names


def _region(raw: str) -> str:
    value = raw.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ValueError("must be a two-letter ISO 3166 region code, e.g. FI")
    return value


def _agents(raw: str) -> tuple[Agent, ...]:
    from shared.domain.directory import parse_agents

    return parse_agents(raw)


def _pools(raw: str) -> tuple[ServicePool, ...]:
    from shared.domain.directory import parse_pools

    return parse_pools(raw)


def _callback_lists(raw: str) -> tuple[CallbackList, ...]:
    from shared.domain.callback_lists import parse_callback_lists

    return parse_callback_lists(raw)


def _enterprise_users(raw: str) -> tuple[EnterpriseUser, ...]:
    from shared.domain.enterprise_users import parse_enterprise_users

    return parse_enterprise_users(raw)


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _optional_guid(raw: str) -> str:
    value = raw.strip().lower()
    if value and not _GUID.match(value):
        raise ValueError("must be a GUID (a D365 systemuserid) or empty")
    return value


def _publisher_prefix(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[a-z][a-z0-9]{1,7}_", value):
        raise ValueError("must be the publisher prefix with its underscore, e.g. new_")
    return value


# ---------------------------------------------------------------- the settings

_T = TypeVar("_T")
_SETTING = "setting"  # the metadata key of a Settings field's declaration


class Setting(NamedTuple):  # a NamedTuple: a quarter of a frozen dataclass's cost at cold start
    """One app setting's declaration, read back from its `Settings` field."""

    attr: str  # the field of Settings
    kind: str  # its type, as annotated
    parse: Callable[[str], Any]
    default: str | None  # None: required
    doc: str
    env: str  # the app setting's name
    secret: bool
    on_first_use: bool  # not in the start-up check (check_settings): parsed by get_settings()


def setting(
    parse: Callable[[str], _T],
    default: str | None,
    doc: str,
    *,
    secret: bool = False,
    env: str | None = None,
    on_first_use: bool = False,
) -> _T:
    """Declare one setting as a `Settings` field: raw text -> `parse` -> the field's type.

    `default` is raw text, parsed like a set value (None: the setting is required); `env` is only
    given when the app setting's name is not the field's name upper-cased."""
    return cast(_T, field(metadata={_SETTING: (parse, default, doc, env, secret, on_first_use)}))


# Not frozen: a frozen dataclass of this many fields costs ~3 ms more at every cold start.
# Nothing assigns to it; get_settings() hands out the one validated instance. Nor a generated
# __init__ (one of this many parameters costs ~3 ms more) or __repr__ (its own hides secrets).
@dataclass(eq=False, repr=False, init=False)
class Settings:
    """The validated settings; field names are the lower-cased setting names."""

    azurewebjobsstorage: str = setting(
        _text,
        "",
        "Storage connection string (local runs, Azurite). In Azure leave it unset and use the "
        "identity-based AzureWebJobsStorage__* settings below: no key anywhere.",
        env="AzureWebJobsStorage",
    )
    azurewebjobsstorage__credential: str = setting(
        _storage_credential,
        "",
        "managedidentity: reach storage with the app's managed identity (as the Functions host "
        "does for its triggers).",
        env="AzureWebJobsStorage__credential",
    )
    azurewebjobsstorage__clientid: str = setting(
        _text,
        "",
        "Client id of the user-assigned managed identity for storage; empty: the system-assigned "
        "one.",
        env="AzureWebJobsStorage__clientId",
    )
    azurewebjobsstorage__accountname: str = setting(
        _text,
        "",
        "Storage account name; gives the table, queue and blob URIs when they are not set.",
        env="AzureWebJobsStorage__accountName",
    )
    azurewebjobsstorage__tableserviceuri: str = setting(
        _text,
        "",
        "Table service URI, e.g. https://<account>.table.core.windows.net.",
        env="AzureWebJobsStorage__tableServiceUri",
    )
    azurewebjobsstorage__queueserviceuri: str = setting(
        _text,
        "",
        "Queue service URI, e.g. https://<account>.queue.core.windows.net.",
        env="AzureWebJobsStorage__queueServiceUri",
    )
    azurewebjobsstorage__blobserviceuri: str = setting(
        _text,
        "",
        "Blob service URI, e.g. https://<account>.blob.core.windows.net: the pools' uploaded "
        "prompts (container `prompts`); the Functions host needs it too.",
        env="AzureWebJobsStorage__blobServiceUri",
    )
    app_version: str = setting(
        _text,
        "0.1.0",
        "Version reported by /api/health.",
    )
    public_base_url: str = setting(
        _url,
        None,
        "Public base URL of this Function App (callback, recording and prompt links).",
    )
    tls_ca_bundle: str = setting(
        _text,
        "",
        "Extra CA bundle file for outbound HTTPS (local emulators only; empty in Azure).",
    )
    phone_default_region: str = setting(
        _region,
        "FI",
        "Region used to read numbers written without a country code.",
    )
    outbound_allowed_regions: frozenset[str] = setting(
        _regions,
        "",
        "Countries/regions agents may call, transfer and forward to (comma-separated ISO 3166 "
        "codes, e.g. FI,SE); empty: every region. A refused number is a 422 saying why.",
    )
    outbound_blocked_number_types: frozenset[str] = setting(
        _number_types,
        "PREMIUM_RATE,SHARED_COST",
        "Number types agents may never call, transfer or forward to (comma-separated "
        "phonenumbers types: PREMIUM_RATE, SHARED_COST, TOLL_FREE, VOIP, PERSONAL_NUMBER, "
        "UAN...); empty: none.",
    )
    acs_connection_string: str = setting(
        _acs_connection_string,
        "",
        "ACS resource connection string: endpoint=https://...;accesskey=... (local runs). In "
        "Azure leave it unset and give ACS_ENDPOINT: the managed identity is used.",
        secret=True,
    )
    acs_endpoint: str = setting(
        _optional_https_endpoint,
        "",
        "ACS resource endpoint, e.g. https://<name>.communication.azure.com, reached with the "
        "managed identity (Entra ID) when ACS_CONNECTION_STRING is unset.",
    )
    azure_client_id: str = setting(
        _text,
        "",
        "Client id of the app's user-assigned managed identity (ACS, Application Insights); "
        "empty: the system-assigned one.",
    )
    acs_resource_id: str = setting(
        _text,
        None,
        "ACS resource immutable id: the audience of ACS callback tokens.",
    )
    acs_callback_jwt_issuer: str = setting(
        _https_url,
        "https://acscallautomation.communication.azure.com",
        "Issuer of the JWTs ACS puts on mid-call callbacks.",
    )
    acs_callback_jwks_url: str = setting(
        _https_url,
        "https://acscallautomation.communication.azure.com/calling/keys",
        "Where the public keys for ACS callback JWTs are published.",
    )
    entra_authority_host: str = setting(
        _https_url,
        "https://login.microsoftonline.com",
        "Entra ID authority host.",
    )
    entra_tenant_id: str = setting(
        _text,
        None,
        "Entra ID tenant (directory) id.",
    )
    api_audience: str = setting(
        _text,
        None,
        "Audience of the tokens the web phone panel sends. In Azure: the API app "
        "registration's application (client) id, which v2 access tokens carry as aud "
        "(docs/deploy.md, step 1).",
    )
    dataverse_url: str = setting(
        _https_url,
        None,
        "Dynamics 365 organisation URL, e.g. https://contoso.crm4.dynamics.com.",
    )
    dataverse_client_id: str = setting(
        _text,
        None,
        "Application (client) id of the app registration used as Application User.",
    )
    dataverse_client_secret: str = setting(
        _text,
        None,
        "Client secret of that app registration.",
        secret=True,
    )
    dataverse_publisher_prefix: str = setting(
        _publisher_prefix,
        "new_",
        "Publisher prefix of the custom phone call columns.",
    )
    dataverse_unresolved_parties: bool = setting(
        _bool,
        "false",
        "true: an unknown (or ambiguous) number is the Phone Call's From/To party as an "
        "unresolved party (addressused = the number) on every activity written; false "
        "leaves that party empty, as the use-case document does.",
    )
    callback_secret: str = setting(
        _secret_key,
        None,
        "Key that signs the per-call token in ACS callback URLs and, through a key derived "
        "from it, the links ACS fetches uploaded prompts by (32+ characters).",
        secret=True,
    )
    agents: tuple[Agent, ...] = setting(
        _agents,
        "[]",
        "JSON list of agents: id, name, entraObjectId, systemUserId, acsUserId and/or "
        "phoneNumber, directNumbers, callerIds, workflow (see below).",
        on_first_use=True,
    )
    service_pools: tuple[ServicePool, ...] = setting(
        _pools,
        "[]",
        "JSON list of service pools that seeds an empty pool store (Table Storage); "
        "supervisors edit the stored pools through the API. Each: id, name, numbers, members "
        "(agent ids or {agentId, skill}), ringTimeoutSeconds, wrapUpSeconds, hours, exceptions, "
        "overflow, queueAnnouncements, workflow (see below, docs/pools.md and docs/workflows.md).",
        on_first_use=True,
    )
    agent_role: str = setting(
        _text,
        "Phone.Agent",
        "App role an Entra token must carry to use the agent API.",
    )
    supervisor_role: str = setting(
        _text,
        "Phone.Supervisor",
        "App role of supervisors (pools, members, dashboard, recordings).",
    )
    direct_ring_seconds: int = setting(
        _int_between(5, 300),
        "30",
        "How long a direct call rings the agent before it counts as unanswered.",
    )
    outbound_ring_seconds: int = setting(
        _int_between(5, 300),
        "45",
        "How long click-to-dial rings the customer.",
    )
    activity_subject_inbound: str = setting(
        _text,
        "Incoming call from {number}",
        "Subject of inbound Phone Calls; {number}, {name}, {pool}, {agent} are filled.",
    )
    activity_subject_outbound: str = setting(
        _text,
        "Outgoing call to {number}",
        "Subject of outbound Phone Calls; same placeholders.",
    )
    availability_statuses: dict[str, str] = setting(
        _statuses,
        "{}",
        "JSON object of the customer's own statuses, name -> type (Offwork, Available or "
        'DND), e.g. {"Meeting": "DND"}; Available, Offwork, DND and Lunch always exist.',
    )
    lunch_minutes: int = setting(
        _int_between(1, 240),
        "30",
        "How long Lunch (an Offwork status) lasts before the status before it returns.",
    )
    session_lease_seconds: int = setting(
        _int_between(10, 600),
        "60",
        "Web phone session lease; the panel heartbeats well within it (§1.4).",
    )
    housekeeping_schedule: str = setting(
        _ncrontab,
        None,
        "When the housekeeping timer runs (expired Lunch statuses, offers never rung), "
        "e.g. 0 * * * * *. "
        "Required: the Functions runtime reads it for the timer binding.",
    )
    hold_music_url: str = setting(
        _text,
        "",
        "Audio file (https URL, WAV) the customer hears on hold; empty: ACS's default.",
    )
    callback_offer_prompt: str = setting(
        _text,
        "If you would like us to call you back, press 1. To keep waiting, press any other key.",
        "What a waiting caller hears when a callback is offered (read out by ACS).",
    )
    callback_offer_prompt_url: str = setting(
        _text,
        "",
        "An audio file (https, WAV) to play instead of CALLBACK_OFFER_PROMPT.",
    )
    callback_confirm_prompt: str = setting(
        _text,
        "Thank you. We will call you back as soon as we can. Goodbye.",
        "What the caller hears after pressing 1, before the call ends.",
    )
    callback_confirm_prompt_url: str = setting(
        _text,
        "",
        "An audio file (https, WAV) to play instead of CALLBACK_CONFIRM_PROMPT.",
    )
    kept_place_offer_prompt: str = setting(
        _text,
        "To keep your place in the queue and be called back when it is your turn, press 1."
        " To keep waiting, press any other key.",
        "What a waiting caller hears when a pool offers a callback that keeps the caller's "
        'place (overflow "then": "queuedCallback", docs/pools.md).',
    )
    kept_place_confirm_prompt: str = setting(
        _text,
        "Thank you. You keep your place in the queue, and we will call you back when it is"
        " your turn. Goodbye.",
        "What the caller hears after pressing 1 to keep the place, before the call ends.",
    )
    recording_enabled: bool = setting(
        _bool,
        "true",
        'Record answered calls (a pool\'s "record" in SERVICE_POOLS overrides it).',
    )
    enrich_delay_seconds: int = setting(
        _int_between(0, 3600),
        "30",
        "Delay before the recording link and metrics are written to the activity.",
    )
    enrich_jitter_seconds: int = setting(
        _int_between(0, 600),
        "10",
        "Random spread (plus or minus) around that delay.",
    )
    enrich_max_wait_seconds: int = setting(
        _int_between(0, 86400),
        "600",
        "How long after a call the enrichment waits for its recording (or activity); then "
        "the metrics are written without the link and the reason is kept on the call.",
    )
    enrich_complete_activity: bool = setting(
        _bool,
        "true",
        "Complete the Phone Call (Made / Received) in the enrichment's PATCH; false leaves "
        "it open for the agent.",
    )
    queue_max_dequeue_count: int = setting(
        _int_between(1, 100),
        "5",
        "Must equal host.json extensions.queues.maxDequeueCount: at that attempt a failing "
        "enrichment is recorded as moved to the poison queue.",
    )
    callback_lists: tuple[CallbackList, ...] = setting(
        _callback_lists,
        "{}",
        'JSON object of callback lists: {"<list id>": {"queueId": "<D365 queue GUID>", '
        '"enabled": true, "dueMinutes": 1440, "ownerTeamId" or "ownerUserId": "<GUID>"}} '
        "(see docs/callbacks.md).",
        on_first_use=True,
    )
    callback_poll_schedule: str = setting(
        _ncrontab,
        "0 */15 * * * *",
        "When open callback requests are imported into D365 (NCRONTAB, UTC). The host "
        "resolves %CALLBACK_POLL_SCHEDULE% itself, so set it as an app setting.",
    )
    callback_immediate: bool = setting(
        _bool,
        "true",
        "Import each captured callback request at once (a queue message); the timer stays "
        "the safety net. false: polling only.",
    )
    callback_claim_seconds: int = setting(
        _int_between(60, 3600),
        "300",
        "How long an import run holds the requests it works on; a claim older than this "
        "is taken as left by a dead run.",
    )
    callback_batch_size: int = setting(
        _int_between(1, 250),
        "200",
        "Callback requests imported per batch: one $batch identifies their numbers, one "
        "creates their Phone Calls and queue items.",
    )
    graph_url: str = setting(
        _https_url,
        "https://graph.microsoft.com",
        "Microsoft Graph endpoint (Teams call records; tokens are for "
        "https://graph.microsoft.com with the Dataverse app registration).",
    )
    enterprise_sync_schedule: str = setting(
        _ncrontab,
        "0 0 * * * *",
        "When the Teams PSTN call log is read from Graph: the catch-up for lost "
        "notifications (NCRONTAB, UTC). The host resolves %ENTERPRISE_SYNC_SCHEDULE% "
        "itself, so set it as an app setting.",
    )
    enterprise_notifications: bool = setting(
        _bool,
        "true",
        "Keep a Graph change-notification subscription for call records, so Teams calls "
        "reach D365 within a minute; false: the PSTN call log poll only.",
    )
    graph_subscription_schedule: str = setting(
        _ncrontab,
        "0 */15 * * * *",
        "When the call-record subscription is checked, created or renewed (NCRONTAB, UTC; "
        "the host resolves %GRAPH_SUBSCRIPTION_SCHEDULE% itself: set it as an app setting).",
    )
    graph_subscription_minutes: int = setting(
        _int_between(45, 4230),
        "4200",
        "Lifetime asked for the call-record subscription on each create or renewal (Graph "
        "allows at most 4230 minutes).",
    )
    graph_subscription_renew_minutes: int = setting(
        _int_between(15, 4200),
        "1440",
        "Renew the subscription when fewer minutes than this are left (must be more than "
        "the GRAPH_SUBSCRIPTION_SCHEDULE period, and less than GRAPH_SUBSCRIPTION_MINUTES).",
    )
    enterprise_default_owner: str = setting(
        _optional_guid,
        "",
        "D365 systemuserid that owns enterprise calls of users ENTERPRISE_USERS does not "
        "map; empty: such calls are skipped (unmappedUser).",
    )
    enterprise_users: tuple[EnterpriseUser, ...] = setting(
        _enterprise_users,
        "[]",
        "JSON list of users whose Teams/mobile calls are synced: systemUserId with email "
        "and/or userId (Entra object id). Empty: the AGENTS, by entraObjectId (see "
        "docs/enterprise-calls.md).",
        on_first_use=True,
    )
    enterprise_min_duration_seconds: int = setting(
        _int_between(0, 86400),
        "1",
        "Enterprise calls shorter than this (connected seconds) are not imported.",
    )
    enterprise_match_margin_seconds: int = setting(
        _int_between(0, 3600),
        "120",
        "A Phone Call of the same user and number starting this close to an enterprise "
        "call means it is already logged (by the web phone): not imported again.",
    )
    enterprise_include_accounts_leads: bool = setting(
        _bool,
        "false",
        "Also import enterprise calls whose other party is an account or a lead (not only "
        "a contact).",
    )
    enterprise_overlap_seconds: int = setting(
        _int_between(0, 7 * 86400),
        "900",
        "Safety margin: each PSTN call log read starts this far before the last run's end "
        "(clock skew, rows published just after a run). Records Graph publishes later "
        "come by notification; with ENTERPRISE_NOTIFICATIONS=false set 86400.",
    )
    # ---- the web phone panel (issue 12) ----
    panel_client_id: str = setting(
        _text,
        "",
        "Application (client) id of the panel's app registration (a public client with "
        "Single-page application redirect URIs); empty: the panel cannot sign in.",
    )
    panel_device_emulator_url: str = setting(
        _text,
        "",
        "Local only: the ACS emulator's browser device API the panel rings and answers "
        "through; empty (Azure): the panel uses the ACS Calling SDK.",
    )
    rejoin_seconds: int = setting(
        _int_between(5, 600),
        "60",
        "How long a customer waits on hold music for an agent whose panel dropped (a "
        "refresh) to start again and be rung back; then a pool caller goes to the front "
        "of the queue, a direct call to the agent's DND target.",
    )
    pool_cache_seconds: int = setting(
        _int_between(0, 300),
        "10",
        "How long an instance keeps what it read of the service pools (definitions, numbers, "
        "memberships) for the calls it carries; a supervisor's edit reaches the other "
        "instances within this time (the instance that saved it at once). 0: read for every "
        "invocation.",
    )
    # ---- pool alarms and the wallboard (issue 13; docs/alarms.md) ----
    alarm_check_schedule: str = setting(
        _ncrontab,
        "0 * * * * *",
        "When every pool's alarms are checked besides after each pool call change (NCRONTAB, "
        "UTC): a wait grows, and agents' statuses change, without a call event.",
    )
    alarm_teams_webhook_url: str = setting(
        _optional_https_url,
        "",
        "Teams incoming webhook (a channel's Workflows or connector URL) that gets an "
        "Adaptive Card for each alarm raised or cleared; empty: no Teams notification.",
        secret=True,
    )
    alarm_email_sender: str = setting(
        _optional_email,
        "",
        "The MailFrom address of the ACS Email domain linked to the ACS resource (e.g. "
        "DoNotReply@<domain>); empty: no e-mail notification.",
    )
    alarm_email_to: tuple[str, ...] = setting(
        _email_list,
        "",
        "Comma-separated addresses that get an e-mail for each alarm raised or cleared.",
    )
    wallboard_refresh_seconds: int = setting(
        _int_between(2, 300),
        "5",
        "How often the wallboard page reads the pools' figures again.",
    )
    python_threadpool_thread_count: int = setting(
        _int_between(0, 32),
        "0",
        "Threads the Python worker runs synchronous invocations on (the Functions setting of "
        "that name); 0: the worker's default, min(32, CPUs + 4). Every outbound HTTP "
        "connection pool holds that many connections.",
    )
    http_timeout_seconds: int = setting(
        _int_between(1, 120),
        "15",
        "Timeout for each outbound HTTP request to Dataverse, ACS and Graph.",
    )
    health_cache_seconds: int = setting(
        _int_between(0, 300),
        "10",
        "How long /api/health reuses its last answer (it is anonymous; 0 probes every time).",
    )
    health_timeout_seconds: int = setting(
        _int_between(1, 30),
        "3",
        "Timeout for each dependency probe of /api/health.",
    )

    def __init__(self, **values: Any) -> None:
        """Every field by name, as load_settings() passes them."""
        wrong = values.keys() ^ {s.attr for s in SETTINGS.values()}
        if wrong:
            raise TypeError(f"Settings() takes each of its fields once; not {sorted(wrong)}")
        vars(self).update(values)

    @property
    def storage_connection_string(self) -> str:
        return self.azurewebjobsstorage

    def storage_uri(self, service: str) -> str:
        """The `table`, `queue` or `blob` service URI of identity-based storage."""
        explicit = getattr(self, f"azurewebjobsstorage__{service}serviceuri")
        if explicit:
            return str(explicit).rstrip("/")
        account = self.azurewebjobsstorage__accountname
        return f"https://{account}.{service}.core.windows.net" if account else ""

    @property
    def directory(self) -> Directory:
        from shared.domain.directory import Directory

        return Directory(self.agents, self.service_pools)

    @property
    def worker_threads(self) -> int:
        """How many invocations this worker runs at once (its thread pool's size)."""
        if self.python_threadpool_thread_count:
            return self.python_threadpool_thread_count
        return min(32, (os.cpu_count() or 1) + 4)

    @property
    def ca_bundle(self) -> str | None:
        """The CA bundle path for outbound HTTPS, or None for the system store."""
        return self.tls_ca_bundle or None

    def __repr__(self) -> str:  # never print a secret
        shown = {s.attr: ("***" if s.secret else getattr(self, s.attr)) for s in SETTINGS.values()}
        return f"Settings({shown})"


def _declaration(f: Field[Any]) -> Setting:
    parse, default, doc, env, secret, on_first_use = f.metadata[_SETTING]
    name = env or f.name.upper()
    return Setting(f.name, str(f.type), parse, default, doc, name, secret, on_first_use)


SETTINGS: dict[str, Setting] = {s.env: s for s in map(_declaration, fields(Settings))}
"""The declarations by app setting name, in declaration order (docs/configuration.md's order)."""


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise one ConfigError naming every bad one."""
    values, problems = _read(os.environ if environ is None else environ, SETTINGS.values())
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def check_settings(environ: Mapping[str, str] | None = None) -> None:
    """Start-up's check: what load_settings() checks, but the `on_first_use` settings (and the
    checks between them); raise one ConfigError naming every bad one."""
    env = os.environ if environ is None else environ
    _, problems = _read(env, [s for s in SETTINGS.values() if not s.on_first_use])
    if problems:
        raise ConfigError(problems)


def _read(
    env: Mapping[str, str], declarations: Iterable[Setting]
) -> tuple[dict[str, Any], list[str]]:
    """The declared settings' values by field, and every problem with them or between them
    (a check between settings runs when all it needs were read)."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for declared in declarations:
        name = declared.env
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            if declared.default is None:
                problems.append(f"{name} is missing")
                continue
            raw = declared.default
        try:
            values[declared.attr] = declared.parse(raw)
        except ValueError as exc:
            # Parsers of secret settings never echo the value in their message.
            problems.append(f"{name} {exc}")
    if "agents" in values and "service_pools" in values:
        from shared.domain.directory import Directory, check_directory

        problems.extend(check_directory(Directory(values["agents"], values["service_pools"])))
    if "service_pools" in values and "callback_lists" in values:
        known_lists = {c.id for c in values["callback_lists"]}
        problems.extend(
            f"SERVICE_POOLS pool {p.id!r} offers callbacks to {p.callback.list_id!r}, "
            "which CALLBACK_LISTS does not define"
            for p in values["service_pools"]
            if p.callback is not None and p.callback.list_id not in known_lists
        )
    problems.extend(_storage_problems(env))
    no_acs = not values.get("acs_connection_string") and not values.get("acs_endpoint")
    acs_named = any(p.startswith(("ACS_CONNECTION_STRING", "ACS_ENDPOINT")) for p in problems)
    if no_acs and not acs_named:
        problems.append("ACS_CONNECTION_STRING or ACS_ENDPOINT is missing")
    if values.get("graph_subscription_renew_minutes", 0) >= values.get(
        "graph_subscription_minutes", 4230
    ):
        problems.append(
            "GRAPH_SUBSCRIPTION_RENEW_MINUTES must be less than GRAPH_SUBSCRIPTION_MINUTES"
        )
    if bool(values.get("alarm_email_sender")) != bool(values.get("alarm_email_to", ())):
        problems.append("ALARM_EMAIL_SENDER and ALARM_EMAIL_TO are set together (or neither)")
    return values, problems


def _storage_problems(env: Mapping[str, str]) -> list[str]:
    """Storage is reached by a connection string, or by managed identity with its URIs."""
    if (env.get("AzureWebJobsStorage") or "").strip():
        return []
    if (env.get("AzureWebJobsStorage__credential") or "").strip().lower() != "managedidentity":
        return [
            "AzureWebJobsStorage is missing (or set AzureWebJobsStorage__credential="
            "managedidentity with AzureWebJobsStorage__accountName or the service URIs)"
        ]
    if (env.get("AzureWebJobsStorage__accountName") or "").strip():
        return []
    return [
        f"{name} is missing (identity-based storage needs it, or AzureWebJobsStorage__accountName)"
        for name in (
            "AzureWebJobsStorage__tableServiceUri",
            "AzureWebJobsStorage__queueServiceUri",
            "AzureWebJobsStorage__blobServiceUri",
        )
        if not (env.get(name) or "").strip()
    ]


@cache
def get_settings() -> Settings:
    """The process-wide settings, all of them validated on first use (start-up has run
    check_settings(): only an `on_first_use` setting can still be wrong here)."""
    return load_settings()
