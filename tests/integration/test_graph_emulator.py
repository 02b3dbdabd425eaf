"""The Graph emulator as our Graph adapter (MSAL token, paging, 429) and plain HTTP see it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from emulators.common.tls import LocalTLS
from emulators.entra import EntraEmulator
from emulators.graph import GraphEmulator
from shared.adapters.graph import (
    GRAPH_SCOPE,
    GraphCallRecords,
    GraphClient,
    GraphError,
    graph_time,
)
from shared.adapters.identity import ClientCredentialsTokenProvider
from shared.domain.calls import Direction
from shared.domain.enterprise_calls import EnterpriseCall, UnreadableRecord
from tests.fixtures.entra_dataverse import (
    APP_CLIENT_ID,
    APP_CLIENT_SECRET,
    TENANT_ID,
    ca_session,
)

pytestmark = pytest.mark.integration
T0 = dt.datetime(2024, 5, 6, 8, 0, tzinfo=dt.UTC)
PSTN = "v1.0/communications/callRecords/getPstnCalls"


def token_for(entra: EntraEmulator, local_tls: LocalTLS, scope: str = GRAPH_SCOPE) -> str:
    return ClientCredentialsTokenProvider(
        entra.url, TENANT_ID, APP_CLIENT_ID, APP_CLIENT_SECRET, scope, str(local_tls.ca_path)
    ).token()


def client(
    graph: GraphEmulator,
    entra: EntraEmulator,
    local_tls: LocalTLS,
    sleeps: list[float] | None = None,
    **options: int,
) -> GraphClient:
    tokens = ClientCredentialsTokenProvider(
        entra.url, TENANT_ID, APP_CLIENT_ID, APP_CLIENT_SECRET, GRAPH_SCOPE, str(local_tls.ca_path)
    )
    record: Callable[[float], None] = (sleeps if sleeps is not None else []).append
    return GraphClient(
        graph.url, tokens.token, ca_bundle=str(local_tls.ca_path), sleep=record, **options
    )


def seed(graph: GraphEmulator, count: int, **fields: object) -> list[str]:
    return graph.seed_pstn_calls(
        {"startDateTime": T0 + dt.timedelta(minutes=i), **fields} for i in range(count)
    )


def window(start: dt.datetime, end: dt.datetime) -> str:
    return f"{PSTN}(fromDateTime={graph_time(start)},toDateTime={graph_time(end)})"


def test_pstn_calls_come_in_pages_linked_by_next_link(
    graph_reset: GraphEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    ids = seed(graph_reset, 5)
    graph_reset.set_page_size(2)

    pages = list(
        client(graph_reset, entra, local_tls).pages(window(T0, T0 + dt.timedelta(hours=1)))
    )

    assert [len(p) for p in pages] == [2, 2, 1]
    assert [row["id"] for page in pages for row in page] == ids  # in start order
    seen = graph_reset.requests_seen()
    assert [r["status"] for r in seen] == [200, 200, 200]
    assert [r["query"] for r in seen] == ["", "$skip=2", "$skip=4"]


def test_only_calls_that_started_inside_the_window_are_listed_both_ends_included(
    graph_reset: GraphEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    ids = seed(graph_reset, 4)  # T0, T0+1m, T0+2m, T0+3m

    [page] = client(graph_reset, entra, local_tls).pages(
        window(T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=2))
    )

    assert [row["id"] for row in page] == ids[1:3]


def test_rows_have_graphs_pstn_call_log_shape_and_read_as_enterprise_calls(
    graph_reset: GraphEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    graph_reset.seed_pstn_calls(
        [
            {
                "startDateTime": T0,
                "duration": 95,
                "callType": "user_in",
                "userId": "11111111-1111-4111-8111-111111111111",
                "userPrincipalName": "Anna@Contoso.example",
                "callerNumber": "+358401234567",
                "calleeNumber": "+358101000300",
            },
            {
                "startDateTime": T0 + dt.timedelta(minutes=5),
                "callType": "user_out",
                "callerNumber": "+358101000300",
                "calleeNumber": "+358409999999",
            },
            {"startDateTime": T0 + dt.timedelta(minutes=6), "callType": "conf_in"},
        ]
    )
    raw = graph_reset.pstn_calls()[0]
    assert set(raw) >= {
        "id", "callId", "userId", "userPrincipalName", "userDisplayName", "startDateTime",
        "endDateTime", "duration", "charge", "callType", "currency", "calleeNumber",
        "callerNumber", "destinationContext", "destinationName", "conferenceId",
        "licenseCapability", "inventoryType", "operator", "tenantCountryCode",
        "usageCountryCode", "callDurationSource",
    }  # fmt: skip
    assert raw["startDateTime"].endswith("0Z") and len(raw["startDateTime"]) == 28

    records = GraphCallRecords(client(graph_reset, entra, local_tls))
    [calls] = records.pstn_call_pages(T0, T0 + dt.timedelta(hours=1))

    inbound, outbound, conference = calls
    assert isinstance(inbound, EnterpriseCall) and isinstance(outbound, EnterpriseCall)
    assert (inbound.direction, inbound.customer_number, inbound.duration_seconds) == (
        Direction.INBOUND,
        "+358401234567",  # the caller of an inbound call
        95,
    )
    assert inbound.user_email == "anna@contoso.example"
    assert inbound.started_at == T0 and inbound.ended_at == T0 + dt.timedelta(seconds=95)
    assert (outbound.direction, outbound.customer_number) == (Direction.OUTBOUND, "+358409999999")
    assert isinstance(conference, EnterpriseCall) and conference.direction is None
    assert not any(isinstance(c, UnreadableRecord) for c in calls)


def test_a_429_is_waited_out_for_its_retry_after_and_no_page_is_lost(
    graph_reset: GraphEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    ids = seed(graph_reset, 3)
    graph_reset.set_page_size(1)
    graph_reset.throttle(count=2, retry_after=3, after=1)  # page 2 is refused twice
    sleeps: list[float] = []

    pages = list(
        client(graph_reset, entra, local_tls, sleeps).pages(window(T0, T0 + dt.timedelta(hours=1)))
    )

    assert [row["id"] for page in pages for row in page] == ids
    assert sleeps == [3.0, 3.0]
    assert [r["status"] for r in graph_reset.requests_seen()] == [200, 429, 429, 200, 200]


def test_throttling_beyond_the_retry_bound_raises_graph_error(
    graph_reset: GraphEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    seed(graph_reset, 1)
    graph_reset.throttle(count=5, retry_after=1)
    graph = client(graph_reset, entra, local_tls, max_attempts=3)

    with pytest.raises(GraphError) as caught:
        list(graph.pages(window(T0, T0 + dt.timedelta(hours=1))))

    assert (caught.value.status, caught.value.code) == (429, "TooManyRequests")
    assert len(graph_reset.requests_seen()) == 3


def test_graph_answers_429_with_retry_after_and_its_error_shape(
    graph_reset: GraphEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    graph_reset.throttle(count=1, retry_after=7)
    reply = ca_session(local_tls).get(
        f"{graph_reset.url}/{window(T0, T0 + dt.timedelta(hours=1))}",
        headers={"Authorization": f"Bearer {token_for(entra, local_tls)}"},
    )
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "7"
    error = reply.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert reply.headers["request-id"] == error["innerError"]["request-id"]


def test_a_request_without_a_token_is_refused(
    graph_reset: GraphEmulator, local_tls: LocalTLS
) -> None:
    reply = ca_session(local_tls).get(f"{graph_reset.url}/{window(T0, T0 + dt.timedelta(hours=1))}")
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert reply.json()["error"]["message"] == "Access token is empty."
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_for_another_resource_is_refused(
    graph_reset: GraphEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    dataverse_token = token_for(entra, local_tls, "https://org.crm4.dynamics.com/.default")
    reply = ca_session(local_tls).get(
        f"{graph_reset.url}/{window(T0, T0 + dt.timedelta(hours=1))}",
        headers={"Authorization": f"Bearer {dataverse_token}"},
    )
    assert reply.status_code == 401
    assert "Invalid audience" in reply.json()["error"]["message"]


def test_an_app_without_the_call_records_permission_is_forbidden(
    graph_reset: GraphEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    entra.register_client("graph-no-consent", "secret-without-consent")
    token = ClientCredentialsTokenProvider(
        entra.url,
        TENANT_ID,
        "graph-no-consent",
        "secret-without-consent",
        GRAPH_SCOPE,
        str(local_tls.ca_path),
    ).token()
    reply = ca_session(local_tls).get(
        f"{graph_reset.url}/{window(T0, T0 + dt.timedelta(hours=1))}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 403
    assert "CallRecords.Read.All" in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ("fromDateTime=2024-01-01,toDateTime=2024-05-01", "90 days"),
        ("fromDateTime=2024-05-02,toDateTime=2024-05-01", "earlier"),
        ("fromDateTime=yesterday,toDateTime=2024-05-01", "not a valid DateTimeOffset"),
        ("toDateTime=2024-05-01", "'fromDateTime'"),
    ],
)
def test_a_bad_date_range_is_a_bad_request(
    graph_reset: GraphEmulator,
    entra: EntraEmulator,
    local_tls: LocalTLS,
    arguments: str,
    complaint: str,
) -> None:
    reply = ca_session(local_tls).get(
        f"{graph_reset.url}/{PSTN}({arguments})",
        headers={"Authorization": f"Bearer {token_for(entra, local_tls)}"},
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "BadRequest"
    assert complaint in reply.json()["error"]["message"]


def test_the_control_api_seeds_pages_throttles_and_resets(
    graph_reset: GraphEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    http = ca_session(local_tls)
    control = f"{graph_reset.url}/_control"
    seeded = http.post(
        f"{control}/pstnCalls",
        json={"value": [{"startDateTime": "2024-05-06T08:00:00Z", "callType": "user_out"}] * 3},
    )
    assert seeded.status_code == 201 and len(seeded.json()["ids"]) == 3
    assert http.post(f"{control}/pstnCalls", json=[{"bogus": 1}]).status_code == 400
    assert http.post(f"{control}/paging", json={"pageSize": 2}).status_code == 204
    assert http.post(f"{control}/throttle", json={"count": 1, "retryAfter": 2}).status_code == 204

    url = f"{graph_reset.url}/{PSTN}(fromDateTime=2024-05-06,toDateTime=2024-05-07)"
    auth = {"Authorization": f"Bearer {token_for(entra, local_tls)}"}
    assert http.get(url, headers=auth).status_code == 429
    first = http.get(url, headers=auth).json()
    assert first["@odata.count"] == 2 and "@odata.nextLink" in first
    assert len(http.get(first["@odata.nextLink"], headers=auth).json()["value"]) == 1
    log = http.get(f"{control}/requests").json()["requests"]
    assert [r["status"] for r in log] == [429, 200, 200]
    assert log[1]["app_id"] == APP_CLIENT_ID

    assert http.post(f"{control}/reset").status_code == 204
    assert http.get(f"{control}/pstnCalls").json() == {"value": []}
    assert http.get(f"{control}/requests").json() == {"requests": []}
