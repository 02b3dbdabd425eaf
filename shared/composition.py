"""The composition root: adapters and services built once per process from the settings."""

from __future__ import annotations

from functools import cache

from shared.adapters.acs import AcsTelephony
from shared.adapters.dataverse import DataverseClient, DataverseCrm
from shared.adapters.identity import ClientCredentialsTokenProvider, TokenValidator
from shared.adapters.queues import QueueSender
from shared.adapters.repositories import (
    QueueEnrichment,
    TableAgentStates,
    TableCallRepository,
    TableRecordings,
    TableSessionLeases,
    TableWaitingCalls,
)
from shared.adapters.tables import TableStore
from shared.config import Settings, get_settings
from shared.domain.activity import SubjectTemplates
from shared.domain.availability import BUILT_IN, AvailabilityType, StatusCatalog
from shared.services.access import Access
from shared.services.agent_calls import AgentCalls
from shared.services.calls import CallFlow, CallFlowOptions
from shared.services.health import HealthReport, check_health
from shared.services.presence import Presence
from shared.services.sessions import WebPhoneSessions


def settings() -> Settings:
    return get_settings()


@cache
def table_store() -> TableStore:
    s = settings()
    return TableStore(s.storage_connection_string, timeout_seconds=s.http_timeout_seconds)


@cache
def queue_sender() -> QueueSender:
    s = settings()
    return QueueSender(s.storage_connection_string, timeout_seconds=s.http_timeout_seconds)


@cache
def _health_table_store() -> TableStore:
    # Probes use short timeouts so a dead dependency answers 503 quickly.
    s = settings()
    return TableStore(
        s.storage_connection_string, timeout_seconds=s.health_timeout_seconds, retry_total=0
    )


@cache
def _health_queue_sender() -> QueueSender:
    s = settings()
    return QueueSender(
        s.storage_connection_string, timeout_seconds=s.health_timeout_seconds, retry_total=0
    )


def health() -> HealthReport:
    return check_health(
        settings().app_version,
        [
            ("tableStorage", _health_table_store()),
            ("queueStorage", _health_queue_sender()),
        ],
    )


# ---------------------------------------------------------------------- identity


@cache
def user_tokens() -> TokenValidator:
    """Validates the web phone panel's Entra ID tokens."""
    s = settings()
    authority = f"{s.entra_authority_host}/{s.entra_tenant_id}"
    return TokenValidator(
        issuer=f"{authority}/v2.0",
        audience=s.api_audience,
        jwks_url=f"{authority}/discovery/v2.0/keys",
        ca_bundle=s.ca_bundle,
    )


@cache
def acs_callback_tokens() -> TokenValidator:
    """Validates the JWT ACS puts on mid-call callbacks."""
    s = settings()
    return TokenValidator(
        issuer=s.acs_callback_jwt_issuer,
        audience=s.acs_resource_id,
        jwks_url=s.acs_callback_jwks_url,
        ca_bundle=s.ca_bundle,
    )


@cache
def access() -> Access:
    s = settings()
    return Access(
        user_tokens(), s.directory, agent_role=s.agent_role, supervisor_role=s.supervisor_role
    )


# ---------------------------------------------------------------------- Dataverse and ACS


@cache
def dataverse_client() -> DataverseClient:
    s = settings()
    tokens = ClientCredentialsTokenProvider(
        s.entra_authority_host,
        s.entra_tenant_id,
        s.dataverse_client_id,
        s.dataverse_client_secret,
        f"{s.dataverse_url}/.default",
        s.ca_bundle,
    )
    return DataverseClient(
        s.dataverse_url, tokens.token, ca_bundle=s.ca_bundle, timeout_seconds=s.http_timeout_seconds
    )


@cache
def crm() -> DataverseCrm:
    return DataverseCrm(dataverse_client())


@cache
def telephony() -> AcsTelephony:
    s = settings()
    return AcsTelephony(
        s.acs_connection_string, ca_bundle=s.ca_bundle, timeout_seconds=s.http_timeout_seconds
    )


# ---------------------------------------------------------------------- call flows


@cache
def call_repository() -> TableCallRepository:
    return TableCallRepository(table_store())


@cache
def agent_states() -> TableAgentStates:
    return TableAgentStates(table_store())


@cache
def subject_templates() -> SubjectTemplates:
    s = settings()
    return SubjectTemplates(s.activity_subject_inbound, s.activity_subject_outbound)


@cache
def call_flow() -> CallFlow:
    s = settings()
    return CallFlow(
        directory=s.directory,
        calls=call_repository(),
        agents=agent_states(),
        waiting=TableWaitingCalls(table_store()),
        telephony=telephony(),
        crm=crm(),
        enrichment=QueueEnrichment(queue_sender()),
        options=CallFlowOptions(
            public_base_url=s.public_base_url,
            callback_secret=s.callback_secret.encode(),
            default_region=s.phone_default_region,
            enrich_delay_seconds=s.enrich_delay_seconds,
            templates=subject_templates(),
            outbound_ring_seconds=s.outbound_ring_seconds,
            direct_ring_seconds=s.direct_ring_seconds,
            recording=s.recording_enabled,
            pool_recording={p.id: p.record for p in s.service_pools if p.record is not None},
        ),
    )


@cache
def agent_calls() -> AgentCalls:
    s = settings()
    return AgentCalls(
        flow=call_flow(),
        directory=s.directory,
        calls=call_repository(),
        agents=agent_states(),
        crm=crm(),
        telephony=telephony(),
        templates=subject_templates(),
        default_region=s.phone_default_region,
    )


@cache
def recordings() -> TableRecordings:
    return TableRecordings(table_store())


# ---------------------------------------------------------------------- the agent's phone


@cache
def presence() -> Presence:
    s = settings()
    catalog = StatusCatalog(
        statuses={
            **BUILT_IN,
            **{name: AvailabilityType(kind) for name, kind in s.availability_statuses.items()},
        },
        lunch_minutes=s.lunch_minutes,
    )
    return Presence(agent_states(), s.directory, catalog, on_free=call_flow().dispatch_waiting)


@cache
def web_phone_sessions() -> WebPhoneSessions:
    return WebPhoneSessions(TableSessionLeases(table_store()), settings().session_lease_seconds)
