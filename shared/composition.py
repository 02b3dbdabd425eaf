"""The composition root: adapters and services built once per process from the settings."""

from __future__ import annotations

import time
from functools import cache
from typing import TYPE_CHECKING

from shared.config import Settings, get_settings

if TYPE_CHECKING:  # services and SDK adapters: imported by the factory that needs them
    from datetime import datetime

    from shared.adapters.acs import AcsTelephony
    from shared.adapters.acs_access import AcsAccess
    from shared.adapters.dataverse import DataverseClient, DataverseCrm
    from shared.adapters.graph import GraphClient
    from shared.adapters.identity import ClientCredentialsTokenProvider, TokenValidator
    from shared.adapters.pools import TablePoolRoster, TablePools
    from shared.adapters.prompts import BlobStore, TablePrompts
    from shared.adapters.queues import QueueSender
    from shared.adapters.repositories import (
        QueueEnrichment,
        TableAgentStates,
        TableCallRepository,
        TableRecordings,
    )
    from shared.adapters.storage_access import StorageAccess
    from shared.adapters.tables import TableStore
    from shared.domain.activity import SubjectTemplates
    from shared.domain.calls import Call
    from shared.domain.destinations import DestinationPolicy
    from shared.domain.directory import Directory
    from shared.domain.enrichment import EnrichmentColumns
    from shared.domain.pool_monitoring import PoolCallEntry
    from shared.services.access import Access, AcsCallbackAccess
    from shared.services.agent_calls import AgentCalls
    from shared.services.call_control import CallControl
    from shared.services.call_workflows import CallWorkflows
    from shared.services.callbacks import CallbackService
    from shared.services.calls import CallFlow
    from shared.services.device_tokens import DeviceTokens
    from shared.services.enrichment import ActivityEnrichment
    from shared.services.enterprise_notifications import CallRecordNotifications
    from shared.services.enterprise_sync import EnterpriseSync
    from shared.services.health import HealthReport
    from shared.services.pool_monitor import PoolMonitor
    from shared.services.presence import Presence
    from shared.services.prompts import PromptLibrary
    from shared.services.recordings import RecordingPlayback
    from shared.services.sessions import WebPhoneSessions
    from shared.services.supervision import Supervision


def settings() -> Settings:
    return get_settings()


@cache
def storage_access() -> StorageAccess:
    """A connection string where one is set (Azurite), else the managed identity (Azure)."""
    from shared.adapters.storage_access import StorageAccess

    s = settings()
    if s.storage_connection_string:
        return StorageAccess(connection_string=s.storage_connection_string)
    return StorageAccess(
        table_uri=s.storage_uri("table"),
        queue_uri=s.storage_uri("queue"),
        blob_uri=s.storage_uri("blob"),
        client_id=s.azurewebjobsstorage__clientid,
    )


@cache
def acs_access() -> AcsAccess:
    """The access key where a connection string is set (the emulator), else the identity."""
    from shared.adapters.acs_access import AcsAccess

    s = settings()
    if s.acs_connection_string:
        return AcsAccess(connection_string=s.acs_connection_string)
    return AcsAccess(endpoint=s.acs_endpoint, client_id=s.azure_client_id)


@cache
def table_store() -> TableStore:
    from shared.adapters.tables import TableStore

    s = settings()
    return TableStore(
        storage_access(), timeout_seconds=s.http_timeout_seconds, pool_size=s.worker_threads
    )


@cache
def queue_sender() -> QueueSender:
    from shared.adapters.queues import QueueSender

    s = settings()
    return QueueSender(
        storage_access(), timeout_seconds=s.http_timeout_seconds, pool_size=s.worker_threads
    )


@cache
def _health_table_store() -> TableStore:
    # Probes use short timeouts so a dead dependency answers 503 quickly.
    from shared.adapters.tables import TableStore

    s = settings()
    return TableStore(storage_access(), timeout_seconds=s.health_timeout_seconds, retry_total=0)


@cache
def _health_queue_sender() -> QueueSender:
    from shared.adapters.queues import QueueSender

    s = settings()
    return QueueSender(storage_access(), timeout_seconds=s.health_timeout_seconds, retry_total=0)


_last_health: list[tuple[float, HealthReport]] = []


def health() -> HealthReport:
    """The dependencies' reachability, reused for HEALTH_CACHE_SECONDS: the endpoint is
    anonymous, and a flood of probes must not spend the app's Dataverse request quota."""
    from shared.services.health import check_health

    now = time.monotonic()
    ttl = settings().health_cache_seconds
    if _last_health and now - _last_health[0][0] < ttl:
        return _last_health[0][1]
    report = check_health(
        settings().app_version,
        [
            ("tableStorage", _health_table_store()),
            ("queueStorage", _health_queue_sender()),
            ("dataverse", _health_dataverse()),
            ("acs", _health_acs()),
        ],
    )
    _last_health[:] = [(now, report)]
    return report


@cache
def app_tokens(scope: str) -> ClientCredentialsTokenProvider:
    """The app registration's tokens for one resource: one MSAL app (and cache) per scope."""
    from shared.adapters.identity import ClientCredentialsTokenProvider

    s = settings()
    return ClientCredentialsTokenProvider(
        s.entra_authority_host,
        s.entra_tenant_id,
        s.dataverse_client_id,
        s.dataverse_client_secret,
        scope,
        s.ca_bundle,
    )


def _dataverse_tokens() -> ClientCredentialsTokenProvider:
    return app_tokens(f"{settings().dataverse_url}/.default")


@cache
def _health_dataverse() -> DataverseClient:
    from shared.adapters.dataverse import DataverseClient

    s = settings()
    return DataverseClient(
        s.dataverse_url,
        _dataverse_tokens().token,
        ca_bundle=s.ca_bundle,
        timeout_seconds=s.health_timeout_seconds,
        max_attempts=1,
    )


@cache
def _health_acs() -> AcsTelephony:
    from shared.adapters.acs import AcsTelephony

    s = settings()
    return AcsTelephony(
        acs_access(),
        ca_bundle=s.ca_bundle,
        timeout_seconds=s.health_timeout_seconds,
        retry_total=0,
    )


@cache
def destinations() -> DestinationPolicy:
    """Where agents may dial, transfer and forward to (OUTBOUND_* settings)."""
    from shared.domain.destinations import DestinationPolicy

    s = settings()
    return DestinationPolicy(s.outbound_allowed_regions, s.outbound_blocked_number_types)


# ---------------------------------------------------------------------- identity


@cache
def user_tokens() -> TokenValidator:
    """Validates the web phone panel's Entra ID tokens."""
    from shared.adapters.identity import TokenValidator

    s = settings()
    authority = f"{s.entra_authority_host}/{s.entra_tenant_id}"
    return TokenValidator(
        issuer=f"{authority}/v2.0",
        audience=s.api_audience,
        jwks_url=f"{authority}/discovery/v2.0/keys",
        ca_bundle=s.ca_bundle,
        tenant_id=s.entra_tenant_id,
    )


@cache
def acs_callback_tokens() -> TokenValidator:
    """Validates the JWT ACS puts on mid-call callbacks."""
    from shared.adapters.identity import TokenValidator

    s = settings()
    return TokenValidator(
        issuer=s.acs_callback_jwt_issuer,
        audience=s.acs_resource_id,
        jwks_url=s.acs_callback_jwks_url,
        ca_bundle=s.ca_bundle,
    )


@cache
def acs_callback_access() -> AcsCallbackAccess:
    from shared.services.access import AcsCallbackAccess

    return AcsCallbackAccess(call_flow().tokens, acs_callback_tokens())


@cache
def access() -> Access:
    from shared.services.access import Access

    s = settings()
    return Access(
        user_tokens(), directory(), agent_role=s.agent_role, supervisor_role=s.supervisor_role
    )


# ---------------------------------------------------------------------- Dataverse and ACS


@cache
def dataverse_client() -> DataverseClient:
    from shared.adapters.dataverse import DataverseClient

    s = settings()
    return DataverseClient(
        s.dataverse_url,
        _dataverse_tokens().token,
        ca_bundle=s.ca_bundle,
        timeout_seconds=s.http_timeout_seconds,
        pool_size=s.worker_threads,
    )


@cache
def crm() -> DataverseCrm:
    from shared.adapters.dataverse import DataverseCrm

    return DataverseCrm(dataverse_client(), duration_column=custom_columns().duration_seconds)


@cache
def custom_columns() -> EnrichmentColumns:
    """The phone call's custom columns under the publisher prefix (docs/dataverse-setup.md)."""
    from shared.domain.enrichment import EnrichmentColumns

    return EnrichmentColumns(settings().dataverse_publisher_prefix)


@cache
def telephony() -> AcsTelephony:
    from shared.adapters.acs import AcsTelephony

    s = settings()
    return AcsTelephony(
        acs_access(),
        ca_bundle=s.ca_bundle,
        timeout_seconds=s.http_timeout_seconds,
        pool_size=s.worker_threads,
    )


@cache
def device_tokens() -> DeviceTokens:
    from shared.adapters.acs_identity import AcsIdentity
    from shared.services.device_tokens import DeviceTokens

    s = settings()
    return DeviceTokens(
        AcsIdentity(acs_access(), ca_bundle=s.ca_bundle, timeout_seconds=s.http_timeout_seconds)
    )


# ---------------------------------------------------------------------- call flows


@cache
def call_repository() -> TableCallRepository:
    from shared.adapters.repositories import TableCallRepository

    # A pool call's change reaches the pool call log and the pool's alarm check.
    return TableCallRepository(
        table_store(),
        observer=lambda before, after, rev: pool_monitor().call_changed(before, after, rev),
    )


@cache
def agent_states() -> TableAgentStates:
    from shared.adapters.repositories import TableAgentStates

    return TableAgentStates(table_store(), roster=pool_roster())


@cache
def pool_catalog() -> TablePools:
    """The pools, in Table Storage; SERVICE_POOLS seeds an empty store (docs/pools.md)."""
    from shared.adapters.pools import TablePools

    return TablePools(
        table_store(),
        seed=settings().service_pools,
        cache_seconds=settings().pool_cache_seconds,
        on_membership=lambda agent_id: agent_states().reindex(agent_id),
    )


@cache
def pool_roster() -> TablePoolRoster:
    from shared.adapters.pools import TablePoolRoster
    from shared.adapters.repositories import agent_state

    return TablePoolRoster(
        table_store(),
        memberships=lambda agent_id, fresh=False: pool_catalog().memberships(agent_id, fresh=fresh),
        state_of=agent_state,
    )


@cache
def directory() -> Directory:
    """The agents (AGENTS) and the pools as they are stored now."""
    from shared.domain.directory import Directory

    return Directory(settings().agents, pool_catalog())


@cache
def subject_templates() -> SubjectTemplates:
    from shared.domain.activity import SubjectTemplates

    s = settings()
    return SubjectTemplates(s.activity_subject_inbound, s.activity_subject_outbound)


class _CallbackCaptureOnFirstUse:
    """The callback service, built when a caller first presses 1: the incoming-call webhook
    does not import it (about a tenth of a second at a fresh instance's first request)."""

    def capture_from_call(self, call: Call, list_id: str, at: datetime) -> bool:
        return callbacks().capture_from_call(call, list_id, at)


@cache
def call_flow() -> CallFlow:
    from shared.adapters.repositories import QueueDelayedChecks, TableWaitingCalls
    from shared.services.calls import CallFlow, CallFlowOptions
    from shared.services.ports import Prompt

    s = settings()
    return CallFlow(
        directory=directory(),
        calls=call_repository(),
        agents=agent_states(),
        waiting=TableWaitingCalls(table_store()),
        telephony=telephony(),
        crm=crm(),
        enrichment=enrichment_queue(),
        roster=pool_roster(),
        options=CallFlowOptions(
            public_base_url=s.public_base_url,
            callback_secret=s.callback_secret.encode(),
            default_region=s.phone_default_region,
            enrich_delay_seconds=s.enrich_delay_seconds,
            templates=subject_templates(),
            unresolved_parties=s.dataverse_unresolved_parties,
            outbound_ring_seconds=s.outbound_ring_seconds,
            direct_ring_seconds=s.direct_ring_seconds,
            recording=s.recording_enabled,
            rejoin_seconds=s.rejoin_seconds,
            hold_music_url=s.hold_music_url or None,
            callback_offer=Prompt(s.callback_offer_prompt, s.callback_offer_prompt_url or None),
            callback_confirm=Prompt(
                s.callback_confirm_prompt, s.callback_confirm_prompt_url or None
            ),
            kept_place_offer=Prompt(s.kept_place_offer_prompt),
            kept_place_confirm=Prompt(s.kept_place_confirm_prompt),
        ),
        callbacks=_CallbackCaptureOnFirstUse(),
        delayed=QueueDelayedChecks(queue_sender()),
        recent=_RecentPoolCallsOnFirstUse(),
    )


class _RecentPoolCallsOnFirstUse:
    """The pool call log, imported when a queue announcement first estimates a wait."""

    def recent(self, pool_id: str, since: datetime, limit: int) -> list[PoolCallEntry]:
        from shared.adapters.pool_monitoring import TablePoolCallLog

        return TablePoolCallLog(table_store()).recent(pool_id, since, limit)


@cache
def agent_calls() -> AgentCalls:
    from shared.services.agent_calls import AgentCalls

    s = settings()
    return AgentCalls(
        flow=call_flow(),
        directory=directory(),
        calls=call_repository(),
        agents=agent_states(),
        crm=crm(),
        telephony=telephony(),
        templates=subject_templates(),
        default_region=s.phone_default_region,
        destinations=destinations(),
    )


@cache
def call_workflows() -> CallWorkflows:
    from shared.adapters.dataverse_cases import DataverseCases
    from shared.services.call_workflows import CallWorkflows

    return CallWorkflows(
        agent_calls=agent_calls(),
        flow=call_flow(),
        calls=call_repository(),
        cases=DataverseCases(dataverse_client()),
    )


@cache
def recordings() -> TableRecordings:
    from shared.adapters.repositories import TableRecordings

    return TableRecordings(table_store())


# ---------------------------------------------------------------------- enrichment, recordings


@cache
def enrichment_queue() -> QueueEnrichment:
    from shared.adapters.repositories import QueueEnrichment

    return QueueEnrichment(queue_sender(), jitter_seconds=settings().enrich_jitter_seconds)


@cache
def enrichment() -> ActivityEnrichment:
    from shared.adapters.enrichment import DataverseActivityEnrichment, TableEnrichmentLog
    from shared.domain.enrichment import EnrichmentPolicy
    from shared.services.enrichment import ActivityEnrichment, EnrichmentOptions

    s = settings()
    return ActivityEnrichment(
        calls=call_repository(),
        recordings=recordings(),
        writer=DataverseActivityEnrichment(dataverse_client(), custom_columns()),
        progress=TableEnrichmentLog(table_store()),
        queue=enrichment_queue(),
        options=EnrichmentOptions(
            public_base_url=s.public_base_url,
            policy=EnrichmentPolicy(
                base_delay_seconds=s.enrich_delay_seconds,
                max_wait_seconds=s.enrich_max_wait_seconds,
                complete_activity=s.enrich_complete_activity,
            ),
            max_dequeue_count=s.queue_max_dequeue_count,
        ),
    )


@cache
def recording_playback() -> RecordingPlayback:
    from shared.adapters.acs_recordings import AcsRecordingContent
    from shared.adapters.dataverse_access import DataverseActivityAccess
    from shared.services.recording_access import RecordingAccess
    from shared.services.recordings import RecordingPlayback

    s = settings()
    content = AcsRecordingContent(
        acs_access(), ca_bundle=s.ca_bundle, timeout_seconds=s.http_timeout_seconds
    )
    access = RecordingAccess(
        directory(),
        DataverseActivityAccess(dataverse_client()),
        agent_role=s.agent_role,
        supervisor_role=s.supervisor_role,
    )
    return RecordingPlayback(
        calls=call_repository(), recordings=recordings(), content=content, access=access
    )


# ---------------------------------------------------------------------- the agent's phone


@cache
def presence() -> Presence:
    from shared.domain.availability import BUILT_IN, AvailabilityType, StatusCatalog
    from shared.services.presence import Presence

    s = settings()
    catalog = StatusCatalog(
        statuses={
            **BUILT_IN,
            **{name: AvailabilityType(kind) for name, kind in s.availability_statuses.items()},
        },
        lunch_minutes=s.lunch_minutes,
    )
    return Presence(
        agent_states(),
        directory(),
        catalog,
        on_free=call_flow().dispatch_waiting,
        destinations=destinations(),
    )


@cache
def web_phone_sessions() -> WebPhoneSessions:
    from shared.adapters.repositories import TableSessionLeases
    from shared.services.sessions import WebPhoneSessions

    return WebPhoneSessions(
        TableSessionLeases(table_store()),
        settings().session_lease_seconds,
        ring_back=lambda agent, now: call_flow().rejoins.ring_back(agent, now),
    )


@cache
def call_control() -> CallControl:
    from shared.services.call_control import CallControl

    s = settings()
    return CallControl(
        calls=call_repository(),
        agents=agent_states(),
        telephony=telephony(),
        directory=directory(),
        views=agent_calls(),
        hold_music_url=s.hold_music_url,
        default_region=s.phone_default_region,
        destinations=destinations(),
    )


# ---------------------------------------------------------------------- callbacks (§5)


@cache
def callbacks() -> CallbackService:
    from shared.adapters.callback_store import QueueCallbackSignals, TableCallbackStore
    from shared.adapters.dataverse import DataverseClient
    from shared.adapters.dataverse_batch import DataverseCallbacks
    from shared.services.callbacks import CallbackOptions, CallbackService

    s = settings()
    # Its own client: a $batch of CALLBACK_BATCH_SIZE change sets runs longer than one call.
    client = DataverseClient(
        s.dataverse_url,
        _dataverse_tokens().token,
        ca_bundle=s.ca_bundle,
        timeout_seconds=max(s.http_timeout_seconds, 120),
        pool_size=s.worker_threads,
    )
    return CallbackService(
        store=TableCallbackStore(table_store()),
        crm=DataverseCallbacks(client),
        signals=QueueCallbackSignals(queue_sender()),
        options=CallbackOptions(
            lists=s.callback_lists,
            pool_names={p.id: p.name for p in s.service_pools},  # seeds; renamed pools keep it
            default_region=s.phone_default_region,
            immediate=s.callback_immediate,
            claim_seconds=s.callback_claim_seconds,
            batch_size=s.callback_batch_size,
            unresolved_parties=s.dataverse_unresolved_parties,
        ),
    )


# ---------------------------------------------------------------------- enterprise calls (§4)


@cache
def enterprise_sync() -> EnterpriseSync:
    from shared.adapters.enterprise_dataverse import DataverseEnterpriseCrm
    from shared.adapters.enterprise_state import TableSyncState
    from shared.adapters.graph import GraphCallRecords
    from shared.domain.enterprise_calls import Rules
    from shared.domain.enterprise_users import user_map
    from shared.services.enterprise_sync import EnterpriseSync, SyncOptions

    s = settings()
    return EnterpriseSync(
        call_records=GraphCallRecords(graph_client()),
        crm=DataverseEnterpriseCrm(
            dataverse_client(), duration_column=custom_columns().duration_seconds
        ),
        state=TableSyncState(table_store()),
        users=user_map(s.enterprise_users, s.agents),
        options=SyncOptions(
            rules=Rules(
                min_duration_seconds=s.enterprise_min_duration_seconds,
                match_margin_seconds=s.enterprise_match_margin_seconds,
                include_accounts_leads=s.enterprise_include_accounts_leads,
                default_region=s.phone_default_region,
                unresolved_parties=s.dataverse_unresolved_parties,
                default_owner=s.enterprise_default_owner or None,
            ),
            overlap_seconds=s.enterprise_overlap_seconds,
        ),
    )


@cache
def graph_client() -> GraphClient:
    from shared.adapters.graph import GRAPH_SCOPE, GraphClient

    s = settings()
    return GraphClient(
        s.graph_url,
        app_tokens(GRAPH_SCOPE).token,
        ca_bundle=s.ca_bundle,
        timeout_seconds=s.http_timeout_seconds,
        pool_size=s.worker_threads,
    )


@cache
def call_record_notifications() -> CallRecordNotifications:
    from datetime import timedelta

    from shared.adapters.enterprise_state import TableSyncState
    from shared.adapters.graph import GraphSubscriptions
    from shared.domain.graph_notifications import client_state_for
    from shared.services.enterprise_notifications import (
        CallRecordNotifications,
        NotificationOptions,
    )

    s = settings()
    base = f"{s.public_base_url}/api/enterprise-calls"
    return CallRecordNotifications(
        graph=GraphSubscriptions(graph_client()),
        store=TableSyncState(table_store()),
        queue=queue_sender(),
        sync=enterprise_sync(),
        options=NotificationOptions(
            enabled=s.enterprise_notifications,
            notification_url=f"{base}/notifications",
            lifecycle_url=f"{base}/lifecycle",
            client_state=client_state_for(s.callback_secret),
            lifetime=timedelta(minutes=s.graph_subscription_minutes),
            renew_before=timedelta(minutes=s.graph_subscription_renew_minutes),
        ),
    )


@cache
def supervision() -> Supervision:
    from datetime import UTC, datetime

    from shared.adapters.repositories import TableWaitingCalls
    from shared.services.supervision import Supervision

    return Supervision(
        directory=directory(),
        store=pool_catalog(),
        roster=pool_roster(),
        waiting=TableWaitingCalls(table_store()),
        presence=presence(),
        on_change=lambda pool_id: call_flow().dispatch_pool(pool_id, datetime.now(UTC)),
        prompts=prompt_store(),
    )


@cache
def blob_store() -> BlobStore:
    from shared.adapters.prompts import BlobStore

    s = settings()
    return BlobStore(
        storage_access(), timeout_seconds=s.http_timeout_seconds, pool_size=s.worker_threads
    )


@cache
def prompt_store() -> TablePrompts:
    from shared.adapters.prompts import TablePrompts

    return TablePrompts(table_store(), blob_store())


@cache
def prompt_library() -> PromptLibrary:
    """The pools' uploaded prompts (docs/pools.md, "Prompts")."""
    from shared.services.prompt_links import PromptLinks
    from shared.services.prompts import PromptLibrary

    s = settings()
    return PromptLibrary(
        directory=directory(),
        store=prompt_store(),
        links=PromptLinks(s.public_base_url, s.callback_secret.encode()),
    )


@cache
def pool_monitor() -> PoolMonitor:
    from shared.adapters.pool_monitoring import (
        AcsEmail,
        QueuePoolChecks,
        TableAlarms,
        TablePoolCallLog,
        TeamsWebhook,
    )
    from shared.services.pool_monitor import Channels, PoolMonitor

    s = settings()
    teams = (
        TeamsWebhook(
            s.alarm_teams_webhook_url,
            ca_bundle=s.ca_bundle,
            timeout_seconds=s.http_timeout_seconds,
        )
        if s.alarm_teams_webhook_url
        else None
    )
    email = (
        AcsEmail(
            acs_access(),
            sender=s.alarm_email_sender,
            recipients=s.alarm_email_to,
            ca_bundle=s.ca_bundle,
            timeout_seconds=s.http_timeout_seconds,
        )
        if s.alarm_email_sender
        else None
    )
    return PoolMonitor(
        directory=directory(),
        agents=agent_states(),
        log=TablePoolCallLog(table_store()),
        alarms=TableAlarms(table_store()),
        checks=QueuePoolChecks(queue_sender()),
        channels=Channels(teams=teams, email=email),
        refresh_seconds=s.wallboard_refresh_seconds,
    )
